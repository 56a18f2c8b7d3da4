export { LossLog, type LossLogOptions } from './loss-log.js';
export { ProgressBar, formatDuration, type ProgressOptions, type ProgressInfo, type ProgressStream } from './progress.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  findLatestCheckpoint,
  saveNumberedCheckpoint,
  readCheckpointExtra,
  TrainingCheckpoints,
  type CheckpointingOptions,
  type TrainerState,
  MODEL_FILE,
  STATE_FILE,
  type CheckpointContents,
  type LoadCheckpointOptions,
} from './checkpoint.js';
