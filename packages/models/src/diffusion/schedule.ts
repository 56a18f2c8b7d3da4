/**
 * Noise schedules in float64 and the forward (noising) process on the GPU.
 *
 * Discrete DDPM: x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε, t = 0..T-1, ᾱ_t = Π_{s<=t} (1 - β_s).
 * Continuous VP / Ornstein–Uhlenbeck (Cheng et al.): α_t = e^{-t}, σ_t² = 1 - e^{-2t}.
 */
import { checkOptionKeys, tensor, type Tensor, tidy, add, mul, indexSelect, reshape } from '@transfuse/core';

export type BetaSchedule = 'linear' | 'cosine';

export interface ScheduleConfig {
  /** Number of diffusion steps T (default 1000). */
  steps?: number;
  /** 'linear' (β from betaStart to betaEnd) or 'cosine' (squaredcos_cap_v2). */
  schedule?: BetaSchedule;
  betaStart?: number;
  betaEnd?: number;
}

/** The discrete schedule: β_t and ᾱ_t in float64, and GPU tables for per-sample coefficients. */
export class NoiseSchedule {
  readonly steps: number;
  readonly betas: Float64Array;
  readonly alphasCumprod: Float64Array;
  readonly config: Required<ScheduleConfig>;
  #tables: { sqrtAb: Tensor; sqrt1mAb: Tensor } | null = null;

  constructor(config: ScheduleConfig = {}) {
    checkOptionKeys('NoiseSchedule', config, ['steps', 'schedule', 'betaStart', 'betaEnd']);
    const c = (this.config = { steps: 1000, schedule: 'linear', betaStart: 1e-4, betaEnd: 0.02, ...config } as Required<ScheduleConfig>);
    if (!Number.isInteger(c.steps) || c.steps < 2) throw new Error(`NoiseSchedule: steps must be an integer >= 2, got ${c.steps}`);
    this.steps = c.steps;
    this.betas = c.schedule === 'cosine' ? cosineBetas(c.steps) : linearBetas(c.steps, c.betaStart, c.betaEnd);
    this.alphasCumprod = new Float64Array(c.steps);
    let prod = 1;
    this.betas.forEach((b, t) => (this.alphasCumprod[t] = prod *= 1 - b));
  }

  /** ᾱ at step t, with ᾱ_{-1} = 1 (the clean image). */
  alphaBar(t: number): number {
    return t < 0 ? 1 : this.alphasCumprod[t];
  }

  /** Variance of q(x_{prev} | x_t, x0) when stepping from t to prev (DDPM's β̃). */
  posteriorVariance(t: number, prev = t - 1): number {
    const ab = this.alphaBar(t);
    const abPrev = this.alphaBar(prev);
    return ((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev);
  }

  /** √ᾱ and √(1-ᾱ) as GPU tables [T], created once and kept. */
  private tables(): { sqrtAb: Tensor; sqrt1mAb: Tensor } {
    if (!this.#tables || this.#tables.sqrtAb.disposed) {
      const sqrtAb = tensor(Float32Array.from(this.alphasCumprod, Math.sqrt));
      const sqrt1mAb = tensor(Float32Array.from(this.alphasCumprod, (a) => Math.sqrt(1 - a)));
      this.#tables = { sqrtAb, sqrt1mAb };
    }
    return this.#tables;
  }

  /** Per-sample coefficients √ᾱ_t and √(1-ᾱ_t), shaped [B, 1, ..., 1] to broadcast over x. */
  coefficients(t: Tensor, rank: number): { a: Tensor; s: Tensor } {
    const { sqrtAb, sqrt1mAb } = this.tables();
    const shape = [t.size, ...new Array<number>(rank - 1).fill(1)];
    return { a: reshape(indexSelect(sqrtAb, 0, t), shape), s: reshape(indexSelect(sqrt1mAb, 0, t), shape) };
  }

  /** x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε for int32 timesteps t [B]. */
  addNoise(x0: Tensor, noise: Tensor, t: Tensor): Tensor {
    checkTimesteps(t, x0, 'addNoise');
    return tidy(() => {
      const { a, s } = this.coefficients(t, x0.rank);
      return add(mul(x0, a), mul(noise, s));
    });
  }

  /** The v-prediction target v = √ᾱ ε - √(1-ᾱ) x0. */
  velocity(x0: Tensor, noise: Tensor, t: Tensor): Tensor {
    checkTimesteps(t, x0, 'velocity');
    return tidy(() => {
      const { a, s } = this.coefficients(t, x0.rank);
      return add(mul(noise, a), mul(x0, mul(s, -1)));
    });
  }

  dispose(): void {
    this.#tables?.sqrtAb.dispose();
    this.#tables?.sqrt1mAb.dispose();
    this.#tables = null;
  }
}

function checkTimesteps(t: Tensor, x: Tensor, op: string): void {
  if (t.dtype !== 'int32' || t.rank !== 1 || t.size !== x.shape[0]) {
    throw new Error(`${op}: timesteps must be int32 of shape [${x.shape[0]}] (one per sample), got ${t.dtype} [${t.shape.join(', ')}]`);
  }
}

export function linearBetas(steps: number, start: number, end: number): Float64Array {
  return Float64Array.from({ length: steps }, (_, i) => start + ((end - start) * i) / (steps - 1));
}

/** Nichol & Dhariwal's cosine schedule (diffusers' squaredcos_cap_v2), β capped at 0.999. */
export function cosineBetas(steps: number): Float64Array {
  const f = (t: number) => Math.cos(((t / steps + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  return Float64Array.from({ length: steps }, (_, i) => Math.min(1 - f(i + 1) / f(i), 0.999));
}

/** The continuous VP (Ornstein–Uhlenbeck) process of Cheng et al.: α_t = e^{-t}, σ_t² = 1 - e^{-2t}. */
export const vpProcess = {
  alpha: (t: number): number => Math.exp(-t),
  sigma: (t: number): number => Math.sqrt(-Math.expm1(-2 * t)),
};

/**
 * Step indices for a sampler with `n` steps out of T, in decreasing order, with diffusers'
 * "leading" spacing: T/n · (n-1), ..., T/n, 0 (e.g. 990, 980, ..., 0 for T = 1000, n = 100).
 */
export function leadingTimesteps(steps: number, n: number): number[] {
  if (!Number.isInteger(n) || n < 1 || n > steps) throw new Error(`sampler steps must be an integer in 1..${steps}, got ${n}`);
  const ratio = Math.floor(steps / n);
  return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio);
}
