/**
 * Tensor: a shape, a dtype and contiguous GPU storage (shared by views such as reshape and
 * detach). Reading back is asynchronous only (`await t.data()`); there is no synchronous readback.
 */
import { runBackward, setTensorCheck, track, type BackwardOptions, type GradNode } from './autograd.js';
import { runtime, tensorCounter } from './engine.js';
import type { Storage } from './runtime.js';
import { fmt, sizeOf, type Shape } from './shape.js';
import { checkOptionKeys } from './options.js';
import * as ops from './ops/index.js';

/** Element types. float32 for values; int32 for labels and indices (argmax, gather). */
export type DType = 'float32' | 'int32';
export type TypedArrayFor<D extends DType> = D extends 'int32' ? Int32Array : Float32Array;
export type NestedArray = number | NestedArray[];

export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly size: number;
  /** Gradient accumulated by backward() (leaves only). */
  grad: Tensor | null = null;
  /** @internal the node that produced this tensor, if it was computed from tensors needing grad */
  gradFn: GradNode | null = null;
  #storage: Storage | null;
  #requiresGrad = false;

  /** @internal use the creation functions (tensor, zeros, randn, ...) */
  constructor(storage: Storage, shape: Shape, dtype: DType, scoped = true) {
    this.#storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    tensorCounter.inc();
    if (scoped) track(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.#storage === null;
  }

  /** @internal the GPU storage; `op` names the caller in the error for a disposed tensor. */
  storageFor(op: string): Storage {
    if (!this.#storage) throw new Error(`${op}: a ${this.dtype} tensor of shape ${fmt(this.shape)} was used after dispose()`);
    return this.#storage;
  }

  /** True for leaves marked trainable and for tensors computed from them (outside noGrad). */
  get requiresGrad(): boolean {
    return this.#requiresGrad || this.gradFn !== null;
  }

  set requiresGrad(v: boolean) {
    if (this.gradFn) throw new Error('requiresGrad can only be set on leaf tensors (use detach() to make a leaf)');
    if (v && this.dtype !== 'float32') throw new Error(`requiresGrad: only float32 tensors can require grad, this one is ${this.dtype}`);
    this.#requiresGrad = v;
  }

  /** Marks this leaf as trainable and returns it. */
  requireGrad(v = true): this {
    this.requiresGrad = v;
    return this;
  }

  /** Frees the GPU memory (when no view shares it) and drops the graph behind this tensor. Idempotent. */
  dispose(): void {
    if (!this.#storage) return;
    this.#storage.release();
    this.#storage = null;
    tensorCounter.dec();
    this.gradFn?.release();
    this.gradFn = null;
    this.grad?.dispose();
    this.grad = null;
  }

  /** @internal a handle on the same storage that no scope owns (saved-for-backward). */
  share(): Tensor {
    return new Tensor(this.storageFor('save for backward').retain(), this.shape, this.dtype, false);
  }

  /** A tensor on the same storage, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.storageFor('detach').retain(), this.shape, this.dtype);
  }

  /** Copies the values to the CPU. */
  async data(): Promise<TypedArrayFor<DType>> {
    const s = this.storageFor('data');
    if (this.size === 0) return this.dtype === 'int32' ? new Int32Array(0) : new Float32Array(0);
    const buf = await runtime().read(s, this.size * 4);
    return this.dtype === 'int32' ? new Int32Array(buf) : new Float32Array(buf);
  }

  /** Nested JavaScript arrays (a number for a scalar). */
  async toArray(): Promise<NestedArray> {
    const flat = await this.data();
    if (this.rank === 0) return flat[0];
    const build = (axis: number, offset: number): NestedArray[] => {
      const n = this.shape[axis];
      const stride = sizeOf(this.shape.slice(axis + 1));
      return Array.from({ length: n }, (_, i) =>
        axis === this.rank - 1 ? flat[offset + i] : build(axis + 1, offset + i * stride),
      );
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor of shape ${fmt(this.shape)} has ${this.size} elements, not 1`);
    return (await this.data())[0];
  }

  /**
   * Back-propagates from this tensor into the `.grad` of the leaves that require grad. As in
   * PyTorch, `y.backward(gy)` takes the output's gradient as a tensor (a one-element gy may have
   * any one-element shape); `y.backward({ grad, retainGraph })` is the same with options.
   */
  backward(gradOrOptions: Tensor | BackwardOptions = {}, options: Omit<BackwardOptions, 'grad'> = {}): void {
    if (gradOrOptions === null || typeof gradOrOptions !== 'object') {
      throw new Error(`backward: pass the output's gradient as a Tensor or { grad, retainGraph }, got ${String(gradOrOptions)}`);
    }
    const opts: BackwardOptions = gradOrOptions instanceof Tensor ? { ...options, grad: gradOrOptions } : gradOrOptions;
    checkOptionKeys('backward', opts, ['grad', 'retainGraph']);
    const reshaped = opts.grad && opts.grad.size === 1 && this.size === 1 && fmt(opts.grad.shape) !== fmt(this.shape) ? ops.reshape(opts.grad, this.shape) : null;
    try {
      runBackward(this, reshaped ? { ...opts, grad: reshaped } : opts, { onesLike: (t) => ops.onesLike(t), add: (a, b) => ops.add(a, b) });
    } finally {
      reshaped?.dispose();
    }
  }

  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''}${this.disposed ? ', disposed' : ''})`;
  }

  // ---- methods: thin forwards to the functions in ops/ ----
  add(b: Tensor | number): Tensor { return ops.add(this, b); }
  sub(b: Tensor | number): Tensor { return ops.sub(this, b); }
  mul(b: Tensor | number): Tensor { return ops.mul(this, b); }
  div(b: Tensor | number): Tensor { return ops.div(this, b); }
  pow(b: Tensor | number): Tensor { return ops.pow(this, b); }
  maximum(b: Tensor | number): Tensor { return ops.maximum(this, b); }
  minimum(b: Tensor | number): Tensor { return ops.minimum(this, b); }
  eq(b: Tensor | number): Tensor { return ops.eq(this, b); }
  ne(b: Tensor | number): Tensor { return ops.ne(this, b); }
  lt(b: Tensor | number): Tensor { return ops.lt(this, b); }
  le(b: Tensor | number): Tensor { return ops.le(this, b); }
  gt(b: Tensor | number): Tensor { return ops.gt(this, b); }
  ge(b: Tensor | number): Tensor { return ops.ge(this, b); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  rsqrt(): Tensor { return ops.rsqrt(this); }
  abs(): Tensor { return ops.abs(this); }
  tanh(): Tensor { return ops.tanh(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  relu(): Tensor { return ops.relu(this); }
  silu(): Tensor { return ops.silu(this); }
  gelu(o?: ops.GeluOptions): Tensor { return ops.gelu(this, o); }
  sin(): Tensor { return ops.sin(this); }
  cos(): Tensor { return ops.cos(this); }
  square(): Tensor { return ops.square(this); }
  clamp(min: number, max: number): Tensor { return ops.clamp(this, min, max); }
  sum(axes?: number | number[], keepdims = false): Tensor { return ops.sum(this, axes, keepdims); }
  mean(axes?: number | number[], keepdims = false): Tensor { return ops.mean(this, axes, keepdims); }
  max(axes?: number | number[], keepdims = false): Tensor { return ops.max(this, axes, keepdims); }
  min(axes?: number | number[], keepdims = false): Tensor { return ops.min(this, axes, keepdims); }
  var(axes?: number | number[], keepdims = false, correction = 0): Tensor { return ops.variance(this, axes, keepdims, correction); }
  argmax(axis: number, keepdims = false): Tensor { return ops.argmax(this, axis, keepdims); }
  argmin(axis: number, keepdims = false): Tensor { return ops.argmin(this, axis, keepdims); }
  softmax(axis = -1): Tensor { return ops.softmax(this, axis); }
  logSoftmax(axis = -1): Tensor { return ops.logSoftmax(this, axis); }
  logsumexp(axes?: number | number[], keepdims = false): Tensor { return ops.logsumexp(this, axes, keepdims); }
  matmul(b: Tensor): Tensor { return ops.matmul(this, b); }
  reshape(shape: readonly number[]): Tensor { return ops.reshape(this, shape); }
  flatten(startAxis = 0, endAxis = -1): Tensor { return ops.flatten(this, startAxis, endAxis); }
  permute(axes: readonly number[]): Tensor { return ops.permute(this, axes); }
  transpose(a = -2, b = -1): Tensor { return ops.transpose(this, a, b); }
  get T(): Tensor { return ops.transpose(this, -2, -1); }
  slice(starts: readonly number[], ends?: readonly (number | undefined)[], steps?: readonly number[]): Tensor {
    return ops.slice(this, starts, ends, steps);
  }
  expand(shape: readonly number[]): Tensor { return ops.expand(this, shape); }
  squeeze(axes?: number | number[]): Tensor { return ops.squeeze(this, axes); }
  unsqueeze(axis: number): Tensor { return ops.unsqueeze(this, axis); }
  indexSelect(axis: number, index: Tensor): Tensor { return ops.indexSelect(this, axis, index); }
  cast(dtype: DType): Tensor { return ops.cast(this, dtype); }
  contiguousCopy(): Tensor { return ops.copy(this); }
}

setTensorCheck((v: unknown): v is Tensor => v instanceof Tensor);
