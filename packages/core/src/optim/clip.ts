/** Gradient clipping by the global L2 norm, entirely on the GPU (no readback). */
import { clipScaleKernel } from '@transfuse/kernels';
import { noGrad } from '../autograd/tape.js';
import { keep, tidy } from '../scope.js';
import type { Tensor } from '../tensor.js';
import { concat, reshape, sqrt, square, sum, zeros } from '../ops/index.js';
import { empty, run1d } from '../ops/util.js';

/**
 * torch.nn.utils.clip_grad_norm_: the L2 norm over all gradients of `params` (those without a
 * gradient are skipped), and every gradient scaled by min(1, maxNorm / (norm + 1e-6)). Returns
 * the norm before clipping as a scalar tensor (read it only when you need it: that is a readback).
 * Gradients are replaced by scaled copies, never changed in place (two parameters may share one).
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): Tensor {
  const op = 'clipGradNorm';
  if (!(maxNorm >= 0) || !Number.isFinite(maxNorm)) throw new Error(`${op}: maxNorm must be finite and >= 0, got ${maxNorm}`);
  const withGrad = params.filter((p) => p.grad);
  if (withGrad.length === 0) return zeros([]);
  return noGrad(() => {
    const norm = tidy(() => sqrt(sum(concat(withGrad.map((p) => reshape(sum(square(p.grad!)), [1]))))));
    for (const p of withGrad) {
      const g = p.grad!;
      const scaled = keep(empty(g.shape, 'float32', op));
      run1d(clipScaleKernel(), op, Math.ceil(g.size / 4), [norm, g], [scaled], { n4: Math.ceil(g.size / 4), maxNorm, pad: 0 });
      g.dispose();
      p.grad = scaled;
    }
    return norm;
  });
}
