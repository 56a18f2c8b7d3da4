/** Runs a reduction kernel over any axes (keepdims optional), without autograd: the launcher behind sum and reduce.ts. */
import { grid, reduceColsKernel, reduceRowsKernel, type ReduceOp } from '@transfuse/kernels';
import { noGrad } from '../autograd/tape.js';
import { runtime } from '../runtime/current.js';
import { normAxes, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { permute } from './layout.js';
import { empty, expectTensors, run1d } from './util.js';

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

export function reduce(x: Tensor, kind: ReduceOp, axes: number | readonly number[] | undefined, keepdims: boolean, mean: boolean, op: string) {
  expectTensors(op, 'float32', x);
  const ax = normAxes(axes, x.rank, op);
  const p = plan(x, ax, keepdims, op);
  const y = reduceRaw(p.src, kind, p.outer, p.len, p.inner, mean ? 1 / p.len : 1, p.outShape, op);
  if (p.owned) p.src.dispose();
  return { y, ax, p };
}
