// The GPU* types a consumer sees come with the package; @webgpu/types needs the DOM library.
/// <reference lib="dom" preserve="true" />
/// <reference types="@webgpu/types" preserve="true" />
/**
 * @transfuse/core/node: the Node-only parts (files). Safetensors files and training checkpoint
 * folders; the byte codec (encodeSafetensors/decodeSafetensors) is in the main entry.
 *
 *   import { init } from '@transfuse/core';
 *   import { saveCheckpoint } from '@transfuse/core/node';
 */
import './node_main.js';

export { readSafetensorsHeader, loadSafetensors, saveSafetensors, type ReadableTensor, type SaveSafetensorsOptions } from './io/safetensors_file.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  findLatestCheckpoint,
  saveNumberedCheckpoint,
  readCheckpointExtra,
  TrainingCheckpoints,
  MODEL_FILE,
  STATE_FILE,
  type CheckpointContents,
  type LoadCheckpointOptions,
} from './train/checkpoint.js';
export { defaultTuneFile, fileTuneStore } from './tune_file.js';
