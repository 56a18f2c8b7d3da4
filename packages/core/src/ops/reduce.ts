/** Reductions along any axes (keepdims optional), softmax family, and their backward rules. */
import { softmaxBackwardKernel, softmaxKernel, type RowMode } from '@transfuse/kernels';
import { noGrad, record } from '../autograd/tape.js';
import { tidy } from '../scope.js';
import { runtime } from '../runtime/current.js';
import { fmt, normAxes, normAxis, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, div, exp, log, mul, sub, eq } from './elementwise.js';
import { reshape } from './layout.js';
import { reduce } from './reduction.js';
import { expand, sum } from './sum.js';
import { empty, expectTensors, rowLaunch } from './util.js';

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
