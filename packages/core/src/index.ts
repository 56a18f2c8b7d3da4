// The GPU* types a consumer sees come with the package; @webgpu/types needs the DOM library.
/// <reference lib="dom" preserve="true" />
/// <reference types="@webgpu/types" preserve="true" />
/**
 * @transfuse/core: tensors on WebGPU with define-by-run autograd.
 *
 *   import { init, tensor, randn } from '@transfuse/core';
 *   await init();
 */
export { Tensor, type DType, type NestedArray } from './tensor.js';
import './tensor-methods.js';
export * from './ops/index.js';
export type { RowMode } from '@transfuse/kernels';
export { init, runtime, shutdown, memory, type MemoryInfo } from './runtime/current.js';
export { acquireDevice, NO_ADAPTER_HELP, type BackendName, type DeviceOptions, type AcquiredDevice } from './device.js';
export { Runtime } from './runtime/runtime.js';
export { BufferPool, Storage, sizeClass, type PoolStats } from './runtime/pool.js';
export { awaitGpu } from './runtime/wait.js';
export { setTuneStore, setTuning, tuningEnabled, forceVariant, tunePending, pendingTunes, memoryTuneStore, type TuneStore, type TuneResult } from './tune.js';
export { noGrad, isGradEnabled } from './autograd/tape.js';
export { tidy, keep } from './scope.js';
export type { BackwardOptions } from './autograd/backward.js';
export { broadcastShapes, sizeOf, stridesOf, gcd, fmt as formatShape, type Shape } from './shape.js';
export * from './io/safetensors.js';
export { f16BitsToF32, bf16BitsToF32, f32ToF16Bits, safeDTypeOf, floatValues } from './io/half.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './train/index.js';
export { checkOptionKeys } from './options.js';
