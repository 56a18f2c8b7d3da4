/** Batched matrix multiplication with NumPy-style batch broadcasting. */
import { MATMUL_TILE, MATMUL_WG, matmulKernel } from '@transfuse/kernels';
import { record } from '../autograd.js';
import { runtime } from '../engine.js';
import { broadcastShapes, fmt, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';
import { reshape } from './layout.js';
import { empty, expectTensors } from './util.js';

/**
 * C = op(A) · op(B) over the last two axes, op = transpose when the flag is set; leading axes
 * broadcast. Transposition is a choice of strides in the kernel, never a copy. No autograd.
 */
export function matmulRaw(a: Tensor, b: Tensor, transA: boolean, transB: boolean, op = 'matmul', alpha = 1): Tensor {
  expectTensors(op, 'float32', a, b);
  if (a.rank < 2 || b.rank < 2) throw new Error(`${op}: needs tensors of rank >= 2, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const [am, ak] = transA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const [bk, bn] = transB ? [b.shape[b.rank - 1], b.shape[b.rank - 2]] : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (ak !== bk) {
    throw new Error(
      `${op}: inner dimensions differ: ${fmt(a.shape)}${transA ? 'ᵀ' : ''} · ${fmt(b.shape)}${transB ? 'ᵀ' : ''} (${ak} vs ${bk})`,
    );
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB, op);
  const nBatch = sizeOf(batch);
  const y = empty([...batch, am, bn], 'float32', op);
  if (y.size === 0) return y;
  // Batch stride per operand: 0 when it is broadcast. Only whole-batch broadcasting of one
  // operand (or equal batches) maps onto a single stride; other patterns are expanded first.
  const batchStride = (t: Tensor, tb: readonly number[]): number => {
    const n = sizeOf(tb);
    if (n === 1) return 0;
    if (tb.length === batch.length && tb.every((d, i) => d === batch[i])) return t.shape[t.rank - 1] * t.shape[t.rank - 2];
    return -1;
  };
  const sab = batchStride(a, batchA);
  const sbb = batchStride(b, batchB);
  if (sab < 0 || sbb < 0) {
    throw new Error(`${op}: partial batch broadcasting ${fmt(a.shape)} · ${fmt(b.shape)} is not supported; expand the operands first`);
  }
  const rowsA = a.shape[a.rank - 1];
  const rowsB = b.shape[b.rank - 1];
  const rt = runtime();
  const tile = MATMUL_TILE;
  const [wx, wy] = MATMUL_WG;
  const maxZ = rt.limits.maxComputeWorkgroupsPerDimension;
  if (nBatch > maxZ) throw new Error(`${op}: batch of ${nBatch} matrices exceeds this adapter's ${maxZ} workgroups per dimension`);
  rt.dispatch(matmulKernel(), {
    op,
    params: {
      M: am,
      N: bn,
      K: ak,
      sam: transA ? 1 : rowsA,
      sak: transA ? rowsA : 1,
      sbk: transB ? 1 : rowsB,
      sbn: transB ? rowsB : 1,
      sab,
      sbb,
      alpha,
      pad0: 0,
      pad1: 0,
    },
    inputs: [a.storageFor(op), b.storageFor(op)],
    outputs: [y.storageFor(op)],
    workgroups: [Math.ceil(bn / (tile * wx)), Math.ceil(am / (tile * wy)), nBatch],
  });
  return y;
}

/** Matrix product of the last two axes; 1-D operands are treated as a row (a) or column (b). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  expectTensors('matmul', 'float32', a, b);
  if (a.rank === 1 || b.rank === 1) {
    const a2 = a.rank === 1 ? reshape(a, [1, a.size]) : a;
    const b2 = b.rank === 1 ? reshape(b, [b.size, 1]) : b;
    const y = matmul(a2, b2);
    const shape = [...y.shape];
    if (b.rank === 1) shape.pop();
    if (a.rank === 1) shape.splice(shape.length - (b.rank === 1 ? 1 : 2), 1);
    return reshape(y, shape);
  }
  const y = matmulRaw(a, b, false, false);
  return record('matmul', [a, b], y, (g, [sa, sb], need) => [
    // dA = G · Bᵀ, dB = Aᵀ · G, summed over broadcast batch axes.
    need[0] ? sumTo(matmulRaw(g, sb, false, true, 'matmul (backward)'), a.shape) : null,
    need[1] ? sumTo(matmulRaw(sa, g, true, false, 'matmul (backward)'), b.shape) : null,
  ], [a, b]);
}

