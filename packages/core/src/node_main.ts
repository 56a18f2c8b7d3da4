/**
 * @transfuse/core as Node resolves it (the package's 'node' export condition): the same API as the
 * browser entry (index.ts), with Dawn's adapters (Vulkan, lavapipe, OpenGL) registered for init().
 */
import { setNodeAdapterFinder } from './device.js';
import { nodeAdapter } from './node_adapter.js';
import { setCheckpointerFactory } from './train/checkpointing.js';
import { TrainingCheckpoints } from './train/checkpoint.js';

setNodeAdapterFinder(nodeAdapter);
// Trainers' `checkpoint` option writes numbered folders: Node's file system only.
setCheckpointerFactory((trainer, options, contents) => new TrainingCheckpoints(trainer, options, contents));

export * from './index.js';
