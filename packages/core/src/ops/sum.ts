/** Sum and its adjoint, broadcasting (expand): each one's backward is the other. */
import { record } from '../autograd/tape.js';
import { tidy } from '../scope.js';
import { fmt, stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { gatherStrided, reshape } from './layout.js';
import { reduce } from './reduction.js';
import { expectTensors } from './util.js';

/** Sum over `axes` (all axes when omitted). */
export function sum(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  const { y, p } = reduce(x, 'sum', axes, keepdims, false, 'sum');
  return record('sum', [x], y, (g) => [expand(reshape(g, p.keptShape), x.shape)]);
}

/** Sums a broadcast gradient back to `shape` (the backward of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.join() === shape.join()) return g;
  const off = g.rank - shape.length;
  const axes = g.shape.map((d, i) => i).filter((i) => i < off || (shape[i - off] === 1 && g.shape[i] !== 1));
  return tidy(() => reshape(sum(g, axes, true), shape));
}

/** Broadcasts to `shape` (NumPy rules) by copying. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const op = 'expand';
  expectTensors(op, null, x);
  const target = [...shape];
  const off = target.length - x.rank;
  if (off < 0 || x.shape.some((d, i) => d !== 1 && d !== target[off + i])) {
    throw new Error(`${op}: cannot broadcast ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  if (target.join() === x.shape.join()) return reshape(x, target);
  const xs = stridesOf(x.shape);
  const strides = target.map((_, i) => (i < off || x.shape[i - off] === 1 ? 0 : xs[i - off]));
  const y = gatherStrided(x, target, strides, 0, op);
  return record(op, [x], y, (g) => [sumTo(g, x.shape)]);
}
