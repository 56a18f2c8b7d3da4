/**
 * @transfuse/core as Node resolves it (the package's 'node' export condition): the same API as the
 * browser entry (index.ts), with Dawn's adapters (Vulkan, lavapipe, OpenGL) registered for init().
 */
import { setNodeAdapterFinder } from './device.js';
import { nodeAdapter } from './node_adapter.js';

setNodeAdapterFinder(nodeAdapter);

export * from './index.js';
