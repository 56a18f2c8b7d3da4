/**
 * The chained methods of Tensor (`x.matmul(w).relu().sum().backward()`): thin forwards to the
 * functions in ops/ and to the backward pass, attached to the prototype once. Tensor itself holds
 * data and identity only, so the ops import it without an import cycle. index.ts loads this file.
 */
import { runBackward, type BackwardOptions } from './autograd/backward.js';
import * as ops from './ops/index.js';
import { checkOptionKeys } from './options.js';
import { Tensor, type DType } from './tensor.js';

// Re-exported so that tsc keeps the import in tensor-methods.d.ts: declaration emit drops it on a
// clean build (the augmentation below merges into Tensor), and a consumer's strict tsc then fails.
export type { Tensor as ChainedTensor, DType as ChainedDType };

function backward(root: Tensor, gradOrOptions: Tensor | BackwardOptions, options: Omit<BackwardOptions, 'grad'>): void {
  if (gradOrOptions === null || typeof gradOrOptions !== 'object') {
    throw new Error(`backward: pass the output's gradient as a Tensor or { grad, retainGraph }, got ${String(gradOrOptions)}`);
  }
  const opts: BackwardOptions = gradOrOptions instanceof Tensor ? { ...options, grad: gradOrOptions } : gradOrOptions;
  checkOptionKeys('backward', opts, ['grad', 'retainGraph']);
  const g = opts.grad;
  const reshaped = g && g.size === 1 && root.size === 1 && g.shape.join() !== root.shape.join() ? ops.reshape(g, root.shape) : null;
  try {
    runBackward(root, reshaped ? { ...opts, grad: reshaped } : opts);
  } finally {
    reshaped?.dispose();
  }
}

const methods = {
  /**
   * Back-propagates from this tensor into the `.grad` of the leaves that require grad. As in
   * PyTorch, `y.backward(gy)` takes the output's gradient as a tensor (a one-element gy may have
   * any one-element shape); `y.backward({ grad, retainGraph })` is the same with options.
   */
  backward(this: Tensor, gradOrOptions?: Tensor | BackwardOptions, options?: Omit<BackwardOptions, 'grad'>): void { backward(this, gradOrOptions ?? {}, options ?? {}); },
  add(this: Tensor, b: Tensor | number): Tensor { return ops.add(this, b); },
  sub(this: Tensor, b: Tensor | number): Tensor { return ops.sub(this, b); },
  mul(this: Tensor, b: Tensor | number): Tensor { return ops.mul(this, b); },
  div(this: Tensor, b: Tensor | number): Tensor { return ops.div(this, b); },
  pow(this: Tensor, b: Tensor | number): Tensor { return ops.pow(this, b); },
  maximum(this: Tensor, b: Tensor | number): Tensor { return ops.maximum(this, b); },
  minimum(this: Tensor, b: Tensor | number): Tensor { return ops.minimum(this, b); },
  eq(this: Tensor, b: Tensor | number): Tensor { return ops.eq(this, b); },
  ne(this: Tensor, b: Tensor | number): Tensor { return ops.ne(this, b); },
  lt(this: Tensor, b: Tensor | number): Tensor { return ops.lt(this, b); },
  le(this: Tensor, b: Tensor | number): Tensor { return ops.le(this, b); },
  gt(this: Tensor, b: Tensor | number): Tensor { return ops.gt(this, b); },
  ge(this: Tensor, b: Tensor | number): Tensor { return ops.ge(this, b); },
  neg(this: Tensor): Tensor { return ops.neg(this); },
  exp(this: Tensor): Tensor { return ops.exp(this); },
  log(this: Tensor): Tensor { return ops.log(this); },
  sqrt(this: Tensor): Tensor { return ops.sqrt(this); },
  rsqrt(this: Tensor): Tensor { return ops.rsqrt(this); },
  abs(this: Tensor): Tensor { return ops.abs(this); },
  tanh(this: Tensor): Tensor { return ops.tanh(this); },
  sigmoid(this: Tensor): Tensor { return ops.sigmoid(this); },
  relu(this: Tensor): Tensor { return ops.relu(this); },
  silu(this: Tensor): Tensor { return ops.silu(this); },
  gelu(this: Tensor, o?: ops.GeluOptions): Tensor { return ops.gelu(this, o); },
  sin(this: Tensor): Tensor { return ops.sin(this); },
  cos(this: Tensor): Tensor { return ops.cos(this); },
  square(this: Tensor): Tensor { return ops.square(this); },
  clamp(this: Tensor, min: number, max: number): Tensor { return ops.clamp(this, min, max); },
  sum(this: Tensor, axes?: number | number[], keepdims = false): Tensor { return ops.sum(this, axes, keepdims); },
  mean(this: Tensor, axes?: number | number[], keepdims = false): Tensor { return ops.mean(this, axes, keepdims); },
  max(this: Tensor, axes?: number | number[], keepdims = false): Tensor { return ops.max(this, axes, keepdims); },
  min(this: Tensor, axes?: number | number[], keepdims = false): Tensor { return ops.min(this, axes, keepdims); },
  var(this: Tensor, axes?: number | number[], keepdims = false, correction = 0): Tensor { return ops.variance(this, axes, keepdims, correction); },
  argmax(this: Tensor, axis: number, keepdims = false): Tensor { return ops.argmax(this, axis, keepdims); },
  argmin(this: Tensor, axis: number, keepdims = false): Tensor { return ops.argmin(this, axis, keepdims); },
  softmax(this: Tensor, axis = -1): Tensor { return ops.softmax(this, axis); },
  logSoftmax(this: Tensor, axis = -1): Tensor { return ops.logSoftmax(this, axis); },
  logsumexp(this: Tensor, axes?: number | number[], keepdims = false): Tensor { return ops.logsumexp(this, axes, keepdims); },
  matmul(this: Tensor, b: Tensor): Tensor { return ops.matmul(this, b); },
  reshape(this: Tensor, shape: readonly number[]): Tensor { return ops.reshape(this, shape); },
  flatten(this: Tensor, startAxis = 0, endAxis = -1): Tensor { return ops.flatten(this, startAxis, endAxis); },
  permute(this: Tensor, axes: readonly number[]): Tensor { return ops.permute(this, axes); },
  transpose(this: Tensor, a = -2, b = -1): Tensor { return ops.transpose(this, a, b); },
  slice(this: Tensor, starts: readonly number[], ends?: readonly (number | undefined)[], steps?: readonly number[]): Tensor {
    return ops.slice(this, starts, ends, steps);
  },
  expand(this: Tensor, shape: readonly number[]): Tensor { return ops.expand(this, shape); },
  squeeze(this: Tensor, axes?: number | number[]): Tensor { return ops.squeeze(this, axes); },
  unsqueeze(this: Tensor, axis: number): Tensor { return ops.unsqueeze(this, axis); },
  indexSelect(this: Tensor, axis: number, index: Tensor): Tensor { return ops.indexSelect(this, axis, index); },
  cast(this: Tensor, dtype: DType): Tensor { return ops.cast(this, dtype); },
  /** A copy with its own storage; gradients flow through it (PyTorch's clone). */
  clone(this: Tensor): Tensor { return ops.copy(this); },
};

type TensorMethods = typeof methods;

declare module './tensor.js' {
  interface Tensor extends TensorMethods {
    /** The last two axes swapped. */
    readonly T: Tensor;
  }
}

// Non-enumerable, as class methods are.
for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Tensor.prototype, name, { value: fn, writable: true, configurable: true });
}
Object.defineProperty(Tensor.prototype, 'T', {
  get(this: Tensor): Tensor {
    return ops.transpose(this, -2, -1);
  },
  configurable: true,
});
