/**
 * Parameter initialisation as PyTorch does it, drawn from the counter-based generator: from the
 * global stream (reproducible after `manualSeed`) or from an explicit seed.
 */
import { sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { rand, randn } from '../ops/index.js';

export interface InitOptions {
  /** Draw from this seed instead of the global generator. */
  seed?: number;
}

/**
 * A seed for stream `k` of a layer seeded with `seed`, so a layer's weight and bias (and two
 * layers with neighbouring seeds) never share random numbers. Stays a safe integer.
 */
export function deriveSeed(seed: number, k: number): number {
  if (!Number.isSafeInteger(seed)) throw new Error(`deriveSeed: seed must be a safe integer, got ${seed}`);
  // murmur3's 32-bit finaliser over (low word, stream); the high word is kept.
  let h = ((seed >>> 0) ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  return Math.floor(seed / 2 ** 32) * 2 ** 32 + h;
}

/** PyTorch's fan-in of a weight: shape[1] times the receptive field (kernel taps). */
export function fanIn(shape: readonly number[]): number {
  if (shape.length < 2) throw new Error(`fanIn: needs a weight of rank >= 2, got [${shape.join(', ')}]`);
  return shape[1] * sizeOf(shape.slice(2));
}

/**
 * kaiming_uniform_ with leaky-ReLU slope `a`: U(-b, b), b = sqrt(2 / (1 + a²)) · sqrt(3 / fanIn).
 * PyTorch's Linear and Conv use a = sqrt(5), which gives b = 1 / sqrt(fanIn).
 */
export function kaimingUniform(shape: readonly number[], opts: InitOptions & { a?: number; fanIn?: number } = {}): Tensor {
  const a = opts.a ?? Math.sqrt(5);
  const n = opts.fanIn ?? fanIn(shape);
  const bound = Math.sqrt(2 / (1 + a * a)) * Math.sqrt(3 / n);
  return rand(shape, { low: -bound, high: bound, seed: opts.seed });
}

/** U(-1/sqrt(fanIn), 1/sqrt(fanIn)): PyTorch's default bias of Linear and Conv. */
export function uniformFanIn(shape: readonly number[], fanInValue: number, opts: InitOptions = {}): Tensor {
  const bound = fanInValue > 0 ? 1 / Math.sqrt(fanInValue) : 0;
  return rand(shape, { low: -bound, high: bound, seed: opts.seed });
}

/** N(mean, std²): PyTorch's default for Embedding (N(0, 1)). */
export function normal(shape: readonly number[], opts: InitOptions & { mean?: number; std?: number } = {}): Tensor {
  return randn(shape, { mean: opts.mean, std: opts.std, seed: opts.seed });
}

/** The seed for stream `k` of a layer, or undefined (global generator) when the layer has none. */
export function streamSeed(seed: number | undefined, k: number): InitOptions {
  return { seed: seed === undefined ? undefined : deriveSeed(seed, k) };
}
