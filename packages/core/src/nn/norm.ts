/**
 * Group and layer normalisation. Layer normalisation is composed from existing ops (its backward
 * comes from the composition); group normalisation is a fused kernel (ops/norm.ts). Statistics
 * use the biased variance, as PyTorch.
 */
import { tidy } from '../scope.js';
import { fmt, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, full, groupNorm, mean, mul, rsqrt, square, sub } from '../ops/index.js';
import { Layer, parameter } from './module.js';

/** (x - mean) / sqrt(var + eps) over the given axes of x (kept as size 1). */
function standardize(x: Tensor, axes: number[], eps: number): Tensor {
  const d = sub(x, mean(x, axes, true));
  return mul(d, rsqrt(add(mean(square(d), axes, true), eps)));
}

/** Group normalisation is one fused kernel pair in ops/norm.ts; re-exported here with the layer. */
export { groupNorm };

/** Layer normalisation over the trailing axes `normalizedShape`, with optional elementwise affine. */
export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  const k = normalizedShape.length;
  if (k === 0 || k > x.rank || x.shape.slice(x.rank - k).join() !== normalizedShape.join()) {
    throw new Error(`${op}: input ${fmt(x.shape)} does not end with the normalized shape ${fmt(normalizedShape)}`);
  }
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (t && t.shape.join() !== normalizedShape.join()) throw new Error(`${op}: ${name} must be ${fmt(normalizedShape)}, got ${fmt(t.shape)}`);
  }
  const axes = normalizedShape.map((_, i) => x.rank - k + i);
  return tidy(() => {
    const y = standardize(x, axes, eps);
    const scaled = weight ? mul(y, weight) : y;
    return bias ? add(scaled, bias) : scaled;
  });
}

/** torch.nn.GroupNorm: weight (ones) and bias (zeros) of shape [numChannels] when affine. */
export class GroupNorm extends Layer {
  weight: Tensor | null;
  bias: Tensor | null;

  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly opts: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    if (!Number.isInteger(numGroups) || numGroups < 1 || !Number.isInteger(numChannels) || numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm: numChannels ${numChannels} must be a multiple of numGroups ${numGroups}`);
    }
    const affine = opts.affine ?? true;
    this.weight = affine ? parameter(full([numChannels], 1)) : null;
    this.bias = affine ? parameter(full([numChannels], 0)) : null;
  }

  /** With activation 'silu', returns SiLU(GroupNorm(x)) from one fused kernel. */
  forward(x: Tensor, activation: 'none' | 'silu' = 'none'): Tensor {
    if (x.rank < 2 || x.shape[1] !== this.numChannels) {
      throw new Error(`GroupNorm: expected ${this.numChannels} channels in input [N, C, ...], got ${fmt(x.shape)}`);
    }
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.opts.eps ?? 1e-5, activation);
  }
}

/** torch.nn.LayerNorm over the trailing `normalizedShape`: weight ones, bias zeros. */
export class LayerNorm extends Layer {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly normalizedShape: readonly number[];

  constructor(
    normalizedShape: number | readonly number[],
    readonly opts: { eps?: number; elementwiseAffine?: boolean } = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (this.normalizedShape.length === 0 || sizeOf(this.normalizedShape) === 0) {
      throw new Error(`LayerNorm: normalizedShape ${fmt(this.normalizedShape)} must be non-empty`);
    }
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? parameter(full(this.normalizedShape, 1)) : null;
    this.bias = affine ? parameter(full(this.normalizedShape, 0)) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.opts.eps ?? 1e-5);
  }
}
