/** Reductions along any axes (keepdims optional), softmax family, and their backward rules. */
import { grid, reduceColsKernel, reduceRowsKernel, softmaxBackwardKernel, softmaxKernel, type ReduceOp, type RowMode } from '@transfuse/kernels';
import { noGrad, record, tidy } from '../autograd.js';
import { runtime } from '../engine.js';
import { fmt, normAxes, normAxis, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, div, exp, log, mul, sub, eq } from './elementwise.js';
import { expand, permute, reshape } from './layout.js';
import { empty, expectTensors, rowLaunch, run1d } from './util.js';

const INIT: Record<ReduceOp, number> = { sum: 0, max: -Infinity, min: Infinity, argmax: -Infinity, argmin: Infinity };
/** Rows longer than this are split into chunks reduced by a second pass when rows are few. */
const CHUNK = 4096;

interface Plan {
  /** x laid out as [outer, len, inner] (possibly a permuted copy; dispose if `owned`). */
  src: Tensor;
  owned: boolean;
  outer: number;
  len: number;
  inner: number;
  keptShape: number[];
  outShape: number[];
}

/** Maps a reduction over `axes` onto an [outer, len, inner] view, permuting only when it must. */
function plan(x: Tensor, axes: number[], keepdims: boolean, op: string): Plan {
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outShape = keepdims ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  // Size-1 axes do not affect the layout; the reduced non-trivial axes must be adjacent.
  const big = x.shape.map((d, i) => i).filter((i) => x.shape[i] !== 1);
  const redPos = big.map((i, k) => (axes.includes(i) ? k : -1)).filter((k) => k >= 0);
  const adjacent = redPos.length === 0 || redPos[redPos.length - 1] - redPos[0] === redPos.length - 1;
  const len = sizeOf(axes.map((a) => x.shape[a]));
  if (adjacent) {
    const first = redPos.length ? big[redPos[0]] : x.rank;
    const last = redPos.length ? big[redPos[redPos.length - 1]] : x.rank - 1;
    return {
      src: x,
      owned: false,
      outer: sizeOf(x.shape.slice(0, first)),
      len,
      inner: sizeOf(x.shape.slice(last + 1)),
      keptShape,
      outShape,
    };
  }
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const src = noGrad(() => permute(x, [...kept, ...axes]));
  return { src, owned: true, outer: x.size / Math.max(len, 1), len, inner: 1, keptShape, outShape };
}

/** Reduces [outer, len, inner] → [outer, inner] with one or two kernel passes. */
function reduceRaw(x: Tensor, kind: ReduceOp, outer: number, len: number, inner: number, scale: number, outShape: number[], op: string): Tensor {
  const isArg = kind === 'argmax' || kind === 'argmin';
  const y = empty(outShape, isArg ? 'int32' : 'float32', op);
  if (y.size === 0) return y;
  const rt = runtime();
  const init = INIT[kind];
  // One invocation per output looping over its row needs no barriers, which are slow on software
  // drivers; it wins whenever there are enough outputs to keep every core busy.
  if (inner > 1 || outer >= 256) {
    run1d(reduceColsKernel(kind), op, outer * inner, [x], [y], { n: outer * inner, len, inner, scale, init, pad0: 0, pad1: 0 });
    return y;
  }
  // Few long rows: first reduce chunks in parallel, then the partials.
  const chunks = !isArg && outer < 64 && len > CHUNK ? Math.ceil(len / CHUNK) : 1;
  const rowsPass = (src: Tensor, dst: Tensor, rows: number, rowLen: number, nChunks: number, chunkLen: number, s: number) => {
    const g = grid(rows * nChunks, 1, rt.limits.maxComputeWorkgroupsPerDimension);
    rt.dispatch(reduceRowsKernel(kind), {
      op,
      params: { rows, len: rowLen, chunkLen, chunks: nChunks, gridX: g.workgroups[0], scale: s, init, pad: 0 },
      inputs: [src.storageFor(op)],
      outputs: [dst.storageFor(op)],
      workgroups: g.workgroups,
    });
  };
  if (chunks === 1) {
    rowsPass(x, y, outer, len, 1, Math.max(len, 1), scale);
    return y;
  }
  const partial = empty([outer, chunks], 'float32', op);
  rowsPass(x, partial, outer, len, chunks, CHUNK, 1);
  rowsPass(partial, y, outer, chunks, 1, chunks, scale);
  partial.dispose();
  return y;
}

function reduce(x: Tensor, kind: ReduceOp, axes: number | readonly number[] | undefined, keepdims: boolean, mean: boolean, op: string) {
  expectTensors(op, 'float32', x);
  const ax = normAxes(axes, x.rank, op);
  const p = plan(x, ax, keepdims, op);
  const y = reduceRaw(p.src, kind, p.outer, p.len, p.inner, mean ? 1 / p.len : 1, p.outShape, op);
  if (p.owned) p.src.dispose();
  return { y, ax, p };
}

/** Sum over `axes` (all axes when omitted). */
export function sum(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  const { y, p } = reduce(x, 'sum', axes, keepdims, false, 'sum');
  return record('sum', [x], y, (g) => [expand(reshape(g, p.keptShape), x.shape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  const { y, p } = reduce(x, 'sum', axes, keepdims, true, 'mean');
  if (p.len === 0) throw new Error(`mean: reducing ${fmt(x.shape)} over an empty axis`);
  return record('mean', [x], y, (g) => [mul(expand(reshape(g, p.keptShape), x.shape), 1 / p.len)]);
}

function extremum(x: Tensor, kind: 'max' | 'min', axes: number | readonly number[] | undefined, keepdims: boolean): Tensor {
  const { y, p } = reduce(x, kind, axes, keepdims, false, kind);
  if (p.len === 0) throw new Error(`${kind}: reducing ${fmt(x.shape)} over an empty axis`);
  // Ties share the gradient equally, as PyTorch's amax/amin do.
  return record(kind, [x], y, (g, [sx, sy]) => {
    const mask = eq(sx, reshape(sy, p.keptShape));
    const count = sum(mask, normAxes(axes, x.rank, kind), true);
    return [div(mul(mask, reshape(g, p.keptShape)), count)];
  }, [x, y]);
}

export const max = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => extremum(x, 'max', axes, keepdims);
export const min = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => extremum(x, 'min', axes, keepdims);

/** Index of the largest entry along `axis` (int32; the first one at ties). */
export function argmax(x: Tensor, axis: number, keepdims = false): Tensor {
  return reduce(x, 'argmax', normAxis(axis, x.rank, 'argmax'), keepdims, false, 'argmax').y;
}

export function argmin(x: Tensor, axis: number, keepdims = false): Tensor {
  return reduce(x, 'argmin', normAxis(axis, x.rank, 'argmin'), keepdims, false, 'argmin').y;
}

/** Variance over `axes`; `correction` 0 is the population variance, 1 the sample variance. */
export function variance(x: Tensor, axes?: number | readonly number[], keepdims = false, correction = 0): Tensor {
  const ax = normAxes(axes, x.rank, 'var');
  const n = sizeOf(ax.map((a) => x.shape[a]));
  if (n - correction <= 0) throw new Error(`var: ${n} elements with correction ${correction} leave no degrees of freedom`);
  return tidy(() => {
    const d = sub(x, mean(x, ax, true));
    return mul(sum(mul(d, d), ax, keepdims), 1 / (n - correction));
  });
}

/** Sums a broadcast gradient back to `shape` (the backward of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.join() === shape.join()) return g;
  const off = g.rank - shape.length;
  const axes = g.shape.map((d, i) => i).filter((i) => i < off || (shape[i - off] === 1 && g.shape[i] !== 1));
  return tidy(() => reshape(sum(g, axes, true), shape));
}

/**
 * Softmax or log-softmax along `axis` in one fused kernel (and one for the backward): x is seen
 * as [outer, len, inner] with len the axis, so any axis works without a permuted copy.
 */
function softmaxAlong(x: Tensor, axis: number, logOutput: boolean, op: string, mode?: RowMode): Tensor {
  expectTensors(op, 'float32', x);
  const ax = normAxis(axis, x.rank, op);
  const len = x.shape[ax];
  const inner = sizeOf(x.shape.slice(ax + 1));
  const rows = x.size / Math.max(len, 1);
  const y = empty(x.shape, 'float32', op);
  if (x.size === 0) return y;
  const rt = runtime();
  const launch = rowLaunch(rows, mode);
  const params = { rows, len, inner, gridX: launch.gridX };
  rt.dispatch(softmaxKernel(launch.mode, logOutput), {
    op,
    params,
    inputs: [x.storageFor(op)],
    outputs: [y.storageFor(op)],
    workgroups: launch.workgroups,
  });
  return record(op, [x], y, (g, [sy]) => {
    const back = `${op} (backward)`;
    const dx = empty(x.shape, 'float32', back);
    rt.dispatch(softmaxBackwardKernel(launch.mode, logOutput), {
      op: back,
      params,
      inputs: [sy.storageFor(back), g.storageFor(back)],
      outputs: [dx.storageFor(back)],
      workgroups: launch.workgroups,
    });
    return [dx];
  }, [y]);
}

/** exp(x - max) / Σ exp(x - max) along `axis`; `mode` forces a row mapping (tests). */
export function softmax(x: Tensor, axis = -1, mode?: RowMode): Tensor {
  return softmaxAlong(x, axis, false, 'softmax', mode);
}

/** x - logsumexp(x) along `axis`, computed stably. */
export function logSoftmax(x: Tensor, axis = -1, mode?: RowMode): Tensor {
  return softmaxAlong(x, axis, true, 'logSoftmax', mode);
}

/** log Σ exp(x) over `axes`, computed stably. */
export function logsumexp(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  const ax = normAxes(axes, x.rank, 'logsumexp');
  const keptShape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const outShape = keepdims ? keptShape : x.shape.filter((_, i) => !ax.includes(i));
  const y = tidy(() => noGrad(() => {
    const m = max(x, ax, true);
    const r = add(log(sum(exp(sub(x, m)), ax, true)), m);
    return reshape(r, outShape);
  }));
  return record('logsumexp', [x], y, (g, [sx, sy]) => [
    mul(reshape(g, keptShape), exp(sub(sx, reshape(sy, keptShape)))),
  ], [x, y]);
}
