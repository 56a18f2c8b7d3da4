/** Creating tensors: from data, constants, ranges and the counter-based random generator. */
import { arangeKernel, fillKernel, randomKernel } from '@transfuse/kernels';
import { runtime } from '../runtime/current.js';
import { checkShape, fmt, sizeOf, type Shape } from '../shape.js';
import { Tensor, type DType, type NestedArray } from '../tensor.js';
import { empty, run1d } from './util.js';

function flattenNested(data: NestedArray, op: string): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  let level: NestedArray = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0] ?? 0;
    if (shape[shape.length - 1] === 0) break;
  }
  const values: number[] = [];
  const walk = (v: NestedArray, depth: number) => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new Error(`${op}: ragged nested array (expected a number at depth ${depth})`);
      values.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new Error(`${op}: ragged nested array: expected length ${shape[depth]} at depth ${depth}, shape ${fmt(shape)}`);
    }
    for (const x of v) walk(x, depth + 1);
  };
  walk(data, 0);
  return { values, shape };
}

/**
 * A tensor from a number, nested arrays or a typed array (with `shape`). Float32Array and plain
 * numbers give float32; Int32Array gives int32 unless `dtype` says otherwise.
 */
export function tensor(
  data: NestedArray | Float32Array | Int32Array | Float64Array | Uint8Array,
  shape?: readonly number[],
  dtype?: DType,
): Tensor {
  const op = 'tensor';
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as ArrayLike<number>;
    inferred = [data.length];
    dtype ??= data instanceof Int32Array ? 'int32' : 'float32';
  } else {
    const f = flattenNested(data, op);
    flat = f.values;
    inferred = f.shape;
  }
  const finalShape = shape ? [...shape] : inferred;
  checkShape(finalShape, op);
  if (sizeOf(finalShape) !== flat.length) {
    throw new Error(`${op}: ${flat.length} values do not fill shape ${fmt(finalShape)} (${sizeOf(finalShape)} elements)`);
  }
  const dt: DType = dtype ?? 'float32';
  if (dt === 'int32') {
    for (let i = 0; i < flat.length; i++) {
      if (!Number.isInteger(flat[i])) throw new Error(`${op}: int32 tensor given non-integer value ${flat[i]} at index ${i}`);
    }
  }
  const t = empty(finalShape, dt, op);
  if (flat.length > 0) {
    const typed = dt === 'int32' ? Int32Array.from(flat) : Float32Array.from(flat);
    runtime().upload(t.storageFor(op), typed);
  }
  return t;
}

function fillBits(value: number, dtype: DType): number {
  if (dtype === 'int32') {
    if (!Number.isInteger(value)) throw new Error(`full: int32 tensor given non-integer value ${value}`);
    return value | 0;
  }
  const f = new Float32Array([value]);
  return new Uint32Array(f.buffer)[0];
}

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  const t = empty(shape, dtype, 'full');
  run1d(fillKernel(), 'full', Math.ceil(t.size / 4), [], [t], { n4: Math.ceil(t.size / 4), bits: fillBits(value, dtype), pad: 0 });
  return t;
}

export const zeros = (shape: readonly number[], dtype: DType = 'float32'): Tensor => full(shape, 0, dtype);
export const ones = (shape: readonly number[], dtype: DType = 'float32'): Tensor => full(shape, 1, dtype);
export const zerosLike = (t: Tensor): Tensor => full(t.shape, 0, t.dtype);
export const onesLike = (t: Tensor): Tensor => full(t.shape, 1, t.dtype);
export const fullLike = (t: Tensor, value: number): Tensor => full(t.shape, value, t.dtype);

/** start, start + step, ... below `end` (NumPy's arange). `arange(n)` is 0..n-1. */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'float32'): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (!Number.isFinite(start) || !Number.isFinite(end) || !Number.isFinite(step) || step === 0) {
    throw new Error(`arange: start ${start}, end ${end} and step ${step} must be finite and step non-zero`);
  }
  const n = Math.max(0, Math.ceil((end - start) / step));
  const t = empty([n], dtype, 'arange');
  run1d(arangeKernel(dtype === 'int32' ? 'i32' : 'f32'), 'arange', n, [], [t], { n, start, step });
  return t;
}

// ---- random numbers ----

/** The global generator: a Philox key and the next unused counter. */
const generator = { key0: 0x12345678, key1: 0x9abcdef0, counter: 0 };

function checkSeed(seed: number, op: string): void {
  if (!Number.isSafeInteger(seed)) throw new Error(`${op}: seed must be a safe integer, got ${seed}`);
}

function keyOf(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
}

/** Resets the global generator: later rand/randn calls are reproducible. */
export function manualSeed(seed: number): void {
  checkSeed(seed, 'manualSeed');
  [generator.key0, generator.key1] = keyOf(seed);
  generator.counter = 0;
}

export interface RandomOptions {
  /** Use this seed (counter from 0) instead of the global generator. */
  seed?: number;
}

function random(op: string, dist: 'uniform' | 'normal', shape: readonly number[], p0: number, p1: number, opts: RandomOptions): Tensor {
  if (!Number.isFinite(p0) || !Number.isFinite(p1)) throw new Error(`${op}: parameters must be finite, got ${p0} and ${p1}`);
  let key0: number;
  let key1: number;
  let offset: number;
  const blocks = Math.ceil(sizeOf(shape) / 4);
  if (opts.seed !== undefined) {
    checkSeed(opts.seed, op);
    [key0, key1] = keyOf(opts.seed);
    offset = 0;
  } else {
    ({ key0, key1 } = generator);
    offset = generator.counter;
    generator.counter = (generator.counter + blocks) >>> 0;
  }
  const t = empty(shape, 'float32', op);
  run1d(randomKernel(dist), op, blocks, [], [t], { n4: blocks, key0, key1, offset, p0, p1, pad: 0 });
  return t;
}

/** Uniform on [low, high). */
export function rand(shape: readonly number[], opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  return random('rand', 'uniform', shape, opts.low ?? 0, opts.high ?? 1, opts);
}

/** Normal with the given mean and standard deviation. */
export function randn(shape: readonly number[], opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  return random('randn', 'normal', shape, opts.mean ?? 0, opts.std ?? 1, opts);
}

export const randnLike = (t: Tensor, opts: RandomOptions = {}): Tensor => randn(t.shape, opts);

/** Shape check helper re-exported for ops that build shapes. */
export type { Shape };
