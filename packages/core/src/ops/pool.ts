/**
 * Nearest upsampling and average pooling of [N, C, H, W] tensors, each the other's transpose
 * (see @transfuse/kernels' pool.ts), with their backward rules.
 */
import { poolSpreadKernel, poolSumKernel, type Kernel } from '@transfuse/kernels';
import { record } from '../autograd/tape.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { empty, expectTensors, run1d } from './util.js';

type Pair = [number, number];

/** Runs a pooling kernel between a big grid [planes, bigH, bigW] and a small one [planes, smallH, smallW]. */
function pool(k: Kernel, src: Tensor, out: Tensor, big: Pair, small: Pair, win: number, step: number, scale: number, op: string): void {
  if (out.size === 0) return;
  run1d(k, op, out.size, [src], [out], {
    n: out.size,
    bigH: big[0],
    bigW: big[1],
    smallH: small[0],
    smallW: small[1],
    k: win,
    s: step,
    scale,
    pad0: 0,
    pad1: 0,
    pad2: 0,
  });
}

function expect4d(op: string, x: Tensor): void {
  expectTensors(op, 'float32', x);
  if (x.rank !== 4) throw new Error(`${op}: input must be 4-D [N, C, H, W], got ${fmt(x.shape)}`);
}

function positiveInt(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: ${name} must be a positive integer, got ${v}`);
}

/** Nearest-neighbour upsampling of [N, C, H, W] to [N, C, H·scale, W·scale]. */
export function upsampleNearest2d(x: Tensor, scale = 2): Tensor {
  const op = 'upsampleNearest2d';
  expect4d(op, x);
  positiveInt(op, 'scale', scale);
  const [n, c, h, w] = x.shape;
  const big: Pair = [h * scale, w * scale];
  const y = empty([n, c, ...big], 'float32', op);
  pool(poolSpreadKernel(), x, y, big, [h, w], scale, scale, 1, op);
  return record(op, [x], y, (g) => {
    const dx = empty(x.shape, 'float32', `${op} (backward)`);
    pool(poolSumKernel(), g, dx, big, [h, w], scale, scale, 1, `${op} (backward)`);
    return [dx];
  });
}

/** Average over kernel x kernel windows with the given stride (no padding): [N, C, H, W] → [N, C, Ho, Wo]. */
export function avgPool2d(x: Tensor, kernel = 2, stride = kernel): Tensor {
  const op = 'avgPool2d';
  expect4d(op, x);
  positiveInt(op, 'kernel', kernel);
  positiveInt(op, 'stride', stride);
  const [n, c, h, w] = x.shape;
  if (kernel > h || kernel > w) throw new Error(`${op}: kernel ${kernel} is larger than the input's ${h}x${w} (input ${fmt(x.shape)})`);
  const small: Pair = [Math.floor((h - kernel) / stride) + 1, Math.floor((w - kernel) / stride) + 1];
  const y = empty([n, c, ...small], 'float32', op);
  const scale = 1 / (kernel * kernel);
  pool(poolSumKernel(), x, y, [h, w], small, kernel, stride, scale, op);
  return record(op, [x], y, (g) => {
    const dx = empty(x.shape, 'float32', `${op} (backward)`);
    pool(poolSpreadKernel(), g, dx, [h, w], small, kernel, stride, scale, `${op} (backward)`);
    return [dx];
  });
}
