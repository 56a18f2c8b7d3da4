/** Fused group normalisation (forward and backward kernels) with a per-channel affine transform. */
import { groupNormBackwardKernel, groupNormForwardKernel } from '@transfuse/kernels';
import { record } from '../autograd/tape.js';
import { runtime } from '../runtime/current.js';
import { fmt, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { full, zeros } from './creation.js';
import { gatherStrided } from './layout.js';
import { sum } from './sum.js';
import { empty, expectTensors, rowLaunch } from './util.js';

/**
 * torch.nn.functional.group_norm: x [N, C, ...] normalised over each group of C / numGroups
 * channels and all spatial positions, then y · weight[c] + bias[c] when they are given, then
 * SiLU when `activation` is 'silu' (the GroupNorm → SiLU pair of every U-Net block, in one pass).
 */
export function groupNorm(
  x: Tensor,
  numGroups: number,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  eps = 1e-5,
  activation: 'none' | 'silu' = 'none',
): Tensor {
  const op = 'groupNorm';
  expectTensors(op, 'float32', x);
  if (x.rank < 2) throw new Error(`${op}: expected input [N, C, ...], got ${fmt(x.shape)}`);
  const [n, c] = x.shape;
  if (!Number.isInteger(numGroups) || numGroups < 1 || c % numGroups !== 0) {
    throw new Error(`${op}: ${c} channels of input ${fmt(x.shape)} do not split into ${numGroups} groups`);
  }
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (!t) continue;
    expectTensors(op, 'float32', t);
    if (t.rank !== 1 || t.size !== c) throw new Error(`${op}: ${name} must be [${c}] for input ${fmt(x.shape)}, got ${fmt(t.shape)}`);
  }
  if (!(eps > 0)) throw new Error(`${op}: eps must be positive, got ${eps}`);
  if (activation !== 'none' && activation !== 'silu') throw new Error(`${op}: activation must be 'none' or 'silu', got '${activation}'`);
  const spatial = sizeOf(x.shape.slice(2));
  const rows = n * numGroups;
  const len = (c / numGroups) * spatial;
  const y = empty(x.shape, 'float32', op);
  const stats = empty([rows, 2], 'float32', op);
  if (x.size === 0) return y;
  const rt = runtime();
  const silu = activation === 'silu' ? 1 : 0;
  // A missing weight or bias is a constant 1 or 0 (one kernel serves every case).
  const affine = weight !== null || bias !== null;
  const gamma = weight ?? (affine ? full([c], 1) : zeros([1]));
  const beta = bias ?? (affine ? zeros([c]) : zeros([1]));
  const g = rowLaunch(rows);
  const mode = g.mode;
  const common = { rows, len, spatial, channelsPerGroup: c / numGroups, groups: numGroups, gridX: g.gridX };
  rt.dispatch(groupNormForwardKernel(mode), {
    op,
    params: { ...common, eps, affine: affine ? 1 : 0, silu, pad0: 0, pad1: 0, pad2: 0 },
    inputs: [x.storageFor(op), gamma.storageFor(op), beta.storageFor(op)],
    outputs: [y.storageFor(op), stats.storageFor(op)],
    workgroups: g.workgroups,
  });
  const out = record(op, [x, gamma, beta], y, (gy, [sx, sstats, sgamma, sbeta], need) => {
    const back = `${op} (backward)`;
    // One pass gives dx and the per-sample sums of dγ, dβ; the batch sum of those is small.
    const dx = empty(x.shape, 'float32', back);
    const partial = empty([n, 2 * c], 'float32', back);
    rt.dispatch(groupNormBackwardKernel(mode), {
      op: back,
      params: { ...common, affine: affine ? 1 : 0, silu },
      inputs: [sx.storageFor(back), gy.storageFor(back), sgamma.storageFor(back), sbeta.storageFor(back), sstats.storageFor(back)],
      outputs: [dx.storageFor(back), partial.storageFor(back)],
      workgroups: g.workgroups,
    });
    let [dw, db]: (Tensor | null)[] = [null, null];
    if (need[1] || need[2]) {
      const sums = sum(partial, 0);
      dw = need[1] ? gatherStrided(sums, [c], [1], 0, back) : null;
      db = need[2] ? gatherStrided(sums, [c], [1], c, back) : null;
      sums.dispose();
    }
    partial.dispose();
    if (!need[0]) dx.dispose();
    return [need[0] ? dx : null, dw, db];
  }, [x, stats, gamma, beta]);
  stats.dispose();
  if (!weight) gamma.dispose();
  if (!bias) beta.dispose();
  return out;
}
