/**
 * Layout ops. Every tensor is contiguous: reshape (and squeeze/unsqueeze/flatten) shares the
 * storage for free; permute, slice and expand are one strided-gather pass; concat is one strided
 * scatter per input.
 */
import {
  castKernel,
  gatherStridedKernel,
  indexSelectBackwardKernel,
  indexSelectKernel,
  MAX_RANK,
  scatterStridedKernel,
} from '@transfuse/kernels';
import { isGradEnabled, record } from '../autograd/tape.js';
import { keep } from '../scope.js';
import { collapse, fmt, normAxes, normAxis, sizeOf, stridesOf, type Shape } from '../shape.js';
import { Tensor, type DType } from '../tensor.js';
import { zeros } from './creation.js';
import { empty, expectTensors, pack, run1d } from './util.js';

/** The smallest set of axes that walks `shape` with `strides` (at least one axis). */
function walkable(shape: Shape, strides: number[], op: string): { shape: number[]; strides: number[] } {
  const c = collapse(shape, [strides]);
  if (c.shape.length > MAX_RANK) throw new Error(`${op}: ${c.shape.length} non-mergeable axes; at most ${MAX_RANK} are supported`);
  return c.shape.length === 0 ? { shape: [1], strides: [0] } : { shape: c.shape, strides: c.strides[0] };
}

/** y = the elements of x at offset + Σ coord_d · strides_d over `shape` (no autograd). */
export function gatherStrided(x: Tensor, shape: Shape, strides: number[], offset: number, op: string): Tensor {
  const y = empty(shape, x.dtype, op);
  if (y.size === 0) return y;
  const c = walkable(shape, strides, op);
  run1d(gatherStridedKernel(c.shape.length), op, y.size, [x], [y], {
    n: y.size,
    pad: 0,
    offset,
    shape: pack(c.shape),
    sx: pack(c.strides),
  });
  return y;
}

/** Writes contiguous x into y at offset + Σ coord_d · strides_d (no autograd; y is modified). */
function scatterStrided(x: Tensor, y: Tensor, strides: number[], offset: number, op: string): void {
  if (x.size === 0) return;
  const c = walkable(x.shape, strides, op);
  run1d(scatterStridedKernel(c.shape.length), op, x.size, [x], [y], {
    n: x.size,
    pad: 0,
    offset,
    shape: pack(c.shape),
    sy: pack(c.strides),
  });
}

/** Same data, new shape; one axis may be -1. Shares storage. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const op = 'reshape';
  expectTensors(op, null, x);
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer !== s.lastIndexOf(-1)) throw new Error(`${op}: only one axis can be -1, got ${fmt(shape)}`);
  if (infer >= 0) {
    const rest = sizeOf(s.filter((_, i) => i !== infer));
    if (rest === 0 || x.size % rest !== 0) throw new Error(`${op}: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
    s[infer] = x.size / rest;
  }
  if (s.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(s) !== x.size) {
    throw new Error(`${op}: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
  }
  const y = new Tensor(x.storageFor(op).retain(), s, x.dtype);
  return record(op, [x], y, (g) => [reshape(g, x.shape)]);
}

export function flatten(x: Tensor, startAxis = 0, endAxis = -1): Tensor {
  if (x.rank === 0) return reshape(x, [1]);
  const a = normAxis(startAxis, x.rank, 'flatten');
  const b = normAxis(endAxis, x.rank, 'flatten');
  if (a > b) throw new Error(`flatten: startAxis ${startAxis} comes after endAxis ${endAxis} for rank ${x.rank}`);
  return reshape(x, [...x.shape.slice(0, a), sizeOf(x.shape.slice(a, b + 1)), ...x.shape.slice(b + 1)]);
}

export function squeeze(x: Tensor, axes?: number | number[]): Tensor {
  const drop = axes === undefined ? x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0) : normAxes(axes, x.rank, 'squeeze');
  for (const a of drop) if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${a} of ${fmt(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => !drop.includes(i)));
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.rank + 1, 'unsqueeze');
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Reorders axes: y.shape[i] = x.shape[axes[i]]. */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  const op = 'permute';
  expectTensors(op, null, x);
  if (axes.length !== x.rank) throw new Error(`${op}: ${axes.length} axes given for a tensor of rank ${x.rank} ${fmt(x.shape)}`);
  const perm = axes.map((a) => normAxis(a, x.rank, op));
  if (new Set(perm).size !== perm.length) throw new Error(`${op}: axes ${JSON.stringify(axes)} are not a permutation`);
  if (perm.every((p, i) => p === i)) return reshape(x, x.shape);
  const xs = stridesOf(x.shape);
  const y = gatherStrided(x, perm.map((p) => x.shape[p]), perm.map((p) => xs[p]), 0, op);
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => (inverse[p] = i));
  return record(op, [x], y, (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  if (x.rank < 2) throw new Error(`transpose: needs rank >= 2, got ${fmt(x.shape)}`);
  const perm = x.shape.map((_, i) => i);
  const i = normAxis(a, x.rank, 'transpose');
  const j = normAxis(b, x.rank, 'transpose');
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/**
 * Python-style slice per axis: start (negative counts from the end), end (exclusive; undefined =
 * to the end), step > 0. Axes beyond the given lists are kept whole.
 */
export function slice(x: Tensor, starts: readonly number[], ends?: readonly (number | undefined)[], steps?: readonly number[]): Tensor {
  const op = 'slice';
  expectTensors(op, null, x);
  if (starts.length > x.rank) throw new Error(`${op}: ${starts.length} starts for a tensor of rank ${x.rank} ${fmt(x.shape)}`);
  const xs = stridesOf(x.shape);
  const begin: number[] = [];
  const shape: number[] = [];
  const strides: number[] = [];
  let offset = 0;
  x.shape.forEach((dim, i) => {
    const step = steps?.[i] ?? 1;
    if (!Number.isInteger(step) || step <= 0) throw new Error(`${op}: step ${step} on axis ${i} must be a positive integer`);
    const clampIdx = (v: number) => Math.min(dim, Math.max(0, v < 0 ? v + dim : v));
    const s = clampIdx(starts[i] ?? 0);
    const e = ends?.[i] === undefined ? dim : clampIdx(ends[i]!);
    const n = Math.max(0, Math.ceil((e - s) / step));
    begin.push(s);
    shape.push(n);
    strides.push(xs[i] * step);
    offset += s * xs[i];
  });
  const y = gatherStrided(x, shape, strides, offset, op);
  return record(op, [x], y, (g) => {
    const dx = zeros(x.shape);
    scatterStrided(g, dx, strides, offset, `${op} (backward)`);
    return [dx];
  });
}

/** Concatenates along `axis`; all other axes must match. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  const op = 'concat';
  if (xs.length === 0) throw new Error(`${op}: needs at least one tensor`);
  expectTensors(op, null, ...xs);
  const first = xs[0];
  const ax = normAxis(axis, first.rank, op);
  for (const t of xs) {
    if (t.dtype !== first.dtype) throw new Error(`${op}: mixed dtypes ${first.dtype} and ${t.dtype}`);
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new Error(`${op}: shapes ${xs.map((u) => fmt(u.shape)).join(', ')} differ outside axis ${ax}`);
    }
  }
  const shape = [...first.shape];
  shape[ax] = xs.reduce((s, t) => s + t.shape[ax], 0);
  const y = empty(shape, first.dtype, op);
  const ys = stridesOf(shape);
  let at = 0;
  const offsets: number[] = [];
  for (const t of xs) {
    offsets.push(at);
    scatterStrided(t, y, ys, at * ys[ax], op);
    at += t.shape[ax];
  }
  return record(op, [...xs], y, (g, _s, need) =>
    xs.map((t, i) => {
      if (!need[i]) return null;
      const starts = shape.map(() => 0);
      const ends: (number | undefined)[] = shape.map(() => undefined);
      starts[ax] = offsets[i];
      ends[ax] = offsets[i] + t.shape[ax];
      return slice(g, starts, ends);
    }),
  );
}

/** Stacks equal-shaped tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error('stack: needs at least one tensor');
  const ax = normAxis(axis, xs[0].rank + 1, 'stack');
  return concat(xs.map((t) => unsqueeze(t, ax)), ax);
}

/** Picks entries along `axis` by an int32 index vector: y.shape[axis] = index.size. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  const op = 'indexSelect';
  expectTensors(op, 'float32', x);
  expectTensors(op, 'int32', index);
  if (index.rank !== 1) throw new Error(`${op}: index must be 1-D, got shape ${fmt(index.shape)}`);
  const ax = normAxis(axis, x.rank, op);
  const rows = x.shape[ax];
  const inner = sizeOf(x.shape.slice(ax + 1));
  const k = index.size;
  const shape = [...x.shape];
  shape[ax] = k;
  const y = empty(shape, 'float32', op);
  run1d(indexSelectKernel(), op, y.size, [x, index], [y], { n: y.size, rows, k, inner, pad0: 0, pad1: 0, pad2: 0 });
  return record(op, [x, index], y, (g, [idx]) => {
    const dx = empty(x.shape, 'float32', `${op} (backward)`);
    run1d(indexSelectBackwardKernel(), `${op} (backward)`, dx.size, [g, idx], [dx], { n: dx.size, rows, k, inner, pad0: 0, pad1: 0, pad2: 0 });
    return [dx, null];
  }, [index]);
}

/** A contiguous copy with its own storage. */
export function copy(x: Tensor): Tensor {
  const y = gatherStrided(x, x.shape, stridesOf(x.shape), 0, 'copy');
  return record('copy', [x], y, (g) => [g]);
}

/** float32 ↔ int32 (float → int truncates toward zero). No gradient. */
export function cast(x: Tensor, dtype: DType): Tensor {
  const op = 'cast';
  expectTensors(op, null, x);
  if (x.dtype === dtype) return copy(x);
  const y = empty(x.shape, dtype, op);
  const f = (d: DType) => (d === 'int32' ? 'i32' : 'f32');
  run1d(castKernel(f(x.dtype), f(dtype)), op, x.size, [x], [y], { n: x.size });
  return y;
}

/**
 * Overwrites `dst` with the values of `src` (same shape and dtype), in place on the GPU: the one
 * mutating op, for parameter updates. Not recorded; refused while recording gradients of `dst`.
 */
export function assign(dst: Tensor, src: Tensor): void {
  if (isGradEnabled() && dst.requiresGrad) {
    throw new Error(`assign: in-place update of a tensor that requires grad ${fmt(dst.shape)}; wrap the update in noGrad()`);
  }
  copyInto(dst, src, 'assign');
}

/**
 * dst ← src bit for bit, keeping dst's identity (parameters, optimizer and EMA state). No autograd
 * and no grad-mode check: for library code that owns `dst` (loading state, restoring weights).
 */
export function copyInto(dst: Tensor, src: Tensor, op: string): void {
  expectTensors(op, null, dst, src);
  if (dst.shape.join() !== src.shape.join() || dst.dtype !== src.dtype) {
    throw new Error(`${op}: cannot copy a ${src.dtype} tensor of shape ${fmt(src.shape)} into a ${dst.dtype} one of shape ${fmt(dst.shape)}`);
  }
  // Views share storage: nothing to copy (and one buffer cannot be bound for read and write).
  if (dst.size === 0 || dst.storageFor(op) === src.storageFor(op)) return;
  run1d(gatherStridedKernel(1), op, src.size, [src], [dst], {
    n: src.size,
    pad: 0,
    offset: 0,
    shape: pack([src.size]),
    sx: pack([1]),
  });
}

/** A bit-exact copy with its own storage, owned by the caller (outside any tidy scope; no autograd). */
export function cloneOf(p: Tensor, op: string): Tensor {
  const t = keep(empty(p.shape, p.dtype, op));
  copyInto(t, p, op);
  return t;
}
