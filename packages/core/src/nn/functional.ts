/** Stateless building blocks: sinusoidal timestep embeddings and losses. */
import { noGrad } from '../autograd/tape.js';
import { tidy } from '../scope.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { arange, cast, concat, cos, div, eq, exp, logSoftmax, mean, mul, neg, reshape, sin, square, sub, sum, zeros } from '../ops/index.js';

export interface TimestepEmbeddingOptions {
  /** Put the cosines first (default false, as diffusers' get_timestep_embedding). */
  flipSinToCos?: boolean;
  /** Frequencies are maxPeriod^(-j / (dim/2 - downscaleFreqShift)) (default 1). */
  downscaleFreqShift?: number;
  /** Multiplies the arguments of sin and cos (default 1). */
  scale?: number;
  /** Longest period (default 10000). */
  maxPeriod?: number;
}

/**
 * diffusers' get_timestep_embedding: t [B] (float32) → [B, dim] = [sin(t·f), cos(t·f)] with
 * f_j = exp(-ln(maxPeriod) · j / (half - downscaleFreqShift)), j < half = ⌊dim/2⌋; an odd dim
 * gets a zero last column. Computed in float32 in diffusers' order of operations.
 */
export function timestepEmbedding(t: Tensor, dim: number, opts: TimestepEmbeddingOptions = {}): Tensor {
  const op = 'timestepEmbedding';
  if (t.rank !== 1 || t.dtype !== 'float32') throw new Error(`${op}: timesteps must be a 1-D float32 tensor [B], got ${t.dtype} ${fmt(t.shape)}`);
  const shift = opts.downscaleFreqShift ?? 1;
  const half = Math.floor(dim / 2);
  if (!Number.isInteger(dim) || half < 1 || half - shift <= 0) {
    throw new Error(`${op}: dim ${dim} is too small for downscaleFreqShift ${shift} (need ⌊dim/2⌋ > shift)`);
  }
  const maxPeriod = opts.maxPeriod ?? 10000;
  const scale = opts.scale ?? 1;
  return tidy(() => {
    const freqs = exp(div(mul(arange(0, half), -Math.log(maxPeriod)), half - shift));
    let args = mul(reshape(t, [t.size, 1]), reshape(freqs, [1, half]));
    if (scale !== 1) args = mul(args, scale);
    const parts = opts.flipSinToCos ? [cos(args), sin(args)] : [sin(args), cos(args)];
    if (dim % 2 === 1) parts.push(zeros([t.size, 1]));
    return concat(parts, 1);
  });
}

export type Reduction = 'mean' | 'sum' | 'none';

/**
 * Cross-entropy of logits [N, K] against int32 class labels [N]: -log softmax(logits)[label],
 * averaged (default), summed or per row. Labels must lie in [0, K): one outside picks no class
 * and contributes 0 (checking would need a readback).
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  const op = 'crossEntropy';
  if (logits.rank !== 2 || logits.dtype !== 'float32') throw new Error(`${op}: logits must be float32 [N, K], got ${logits.dtype} ${fmt(logits.shape)}`);
  const [n, k] = logits.shape;
  if (labels.dtype !== 'int32' || labels.rank !== 1 || labels.shape[0] !== n) {
    throw new Error(`${op}: labels must be int32 [${n}] for logits ${fmt(logits.shape)}, got ${labels.dtype} ${fmt(labels.shape)}`);
  }
  return tidy(() => {
    const oneHot = noGrad(() => eq(reshape(cast(labels, 'float32'), [n, 1]), reshape(arange(0, k), [1, k])));
    const picked = sum(mul(logSoftmax(logits, 1), oneHot), 1);
    return reduce(neg(picked), opts.reduction ?? 'mean', op);
  });
}

/** Mean squared error (or its sum, or per element) between two tensors of the same shape. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  const op = 'mseLoss';
  if (input.shape.join() !== target.shape.join()) throw new Error(`${op}: input ${fmt(input.shape)} and target ${fmt(target.shape)} differ in shape`);
  return tidy(() => reduce(square(sub(input, target)), opts.reduction ?? 'mean', op));
}

function reduce(x: Tensor, reduction: Reduction, op: string): Tensor {
  if (reduction === 'none') return x;
  if (reduction === 'sum') return sum(x);
  if (reduction === 'mean') return mean(x);
  throw new Error(`${op}: unknown reduction '${reduction as string}' (use mean, sum or none)`);
}

