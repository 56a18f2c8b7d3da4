/**
 * Tensor: a shape, a dtype and contiguous GPU storage (shared by views such as reshape and
 * detach). Reading back is asynchronous only (`await t.data()`); there is no synchronous readback.
 * This file holds the data and identity only; the op methods (`x.add(y)`, `x.backward()`) are
 * attached in tensor-methods.ts, so that the ops can import Tensor without a cycle.
 */
import type { GradNode } from './autograd/tape.js';
import { runtime, tensorCounter } from './runtime/current.js';
import type { Storage } from './runtime/pool.js';
import { track } from './scope.js';
import { fmt, sizeOf, type Shape } from './shape.js';

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

  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''}${this.disposed ? ', disposed' : ''})`;
  }
}
