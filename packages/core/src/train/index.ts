export { LossLog, type LossLogOptions } from './loss-log.js';
export { ProgressBar, consoleStream, formatDuration, type ProgressOptions, type ProgressInfo, type ProgressStream } from './progress.js';
export { trainingCheckpoints, type CheckpointingOptions, type TrainerState, type TrainingCheckpointer } from './checkpointing.js';
