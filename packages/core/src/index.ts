/**
 * @transfuse/core: tensors on WebGPU with define-by-run autograd.
 *
 *   import { init, tensor, randn } from '@transfuse/core';
 *   await init();
 */
export { Tensor, type DType, type NestedArray } from './tensor.js';
export * from './ops/index.js';
export type { RowMode } from '@transfuse/kernels';
export { init, runtime, shutdown, memory, type MemoryInfo } from './engine.js';
export { acquireDevice, NO_ADAPTER_HELP, type BackendName, type DeviceOptions, type AcquiredDevice } from './device.js';
export { Runtime, BufferPool, Storage, sizeClass, awaitGpu, type PoolStats } from './runtime.js';
export { setTuneStore, setTuning, tuningEnabled, forceVariant, tunePending, pendingTunes, memoryTuneStore, type TuneStore, type TuneResult } from './tune.js';
export { noGrad, isGradEnabled, tidy, keep, type BackwardOptions } from './autograd.js';
export { broadcastShapes, sizeOf, stridesOf, fmt as formatShape, type Shape } from './shape.js';
export * from './io/safetensors.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './train/index.js';
