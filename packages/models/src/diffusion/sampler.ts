/**
 * Reverse-process samplers: DDPM ancestral sampling and DDIM (any step count, eta), with
 * optional x0 clipping and classifier-free guidance. Per-step coefficients are float64 numbers
 * on the CPU (every sample in a batch shares t), so a step uploads nothing.
 */
import { add, clamp, deriveSeed, mul, noGrad, randn, sub, tidy, type Tensor } from '@transfuse/core';
import { leadingTimesteps, type NoiseSchedule } from './schedule.js';

/**
 * What the network outputs: the noise ε, the velocity v = √ᾱ ε - √(1-ᾱ) x0, or the clean sample
 * x0 itself ('sample'). An MLP narrower than the data cannot pass x_t's full-rank noise through
 * its hidden layers, so it cannot predict ε at small t; x0 lies near the data's low-dimensional
 * manifold and can be.
 */
export type Prediction = 'epsilon' | 'v' | 'sample';

/** A denoiser: its prediction for a batch x at integer timestep t (the same for the whole batch). */
export type Denoiser = (x: Tensor, t: number) => Tensor;

export interface SamplerOptions {
  sampler?: 'ddpm' | 'ddim';
  /** Number of reverse steps (default: T for DDPM, 50 for DDIM), leading spacing. */
  steps?: number;
  /** DDIM noise: 0 is deterministic, 1 matches DDPM's posterior variance. */
  eta?: number;
  /** Clip the x0 estimate to [-1, 1] (images in [-1, 1]). */
  clipSample?: boolean;
  prediction?: Prediction;
  /** Seed of the initial noise and of every step's noise. */
  seed?: number;
}

/** Variance of q(x_prev | x_t, x0) between signal levels ᾱ (now) and ᾱ_prev (next): DDPM's β̃. */
export function posteriorVariance(ab: number, abPrev: number): number {
  return ((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev);
}

export interface StepOptions {
  sampler: 'ddpm' | 'ddim';
  eta: number;
  /** Clip the x0 estimate to [-clip, clip] (null: no clipping). */
  clip: number | null;
  prediction: Prediction;
  noiseSeed: number;
}

/**
 * One reverse step from signal level ᾱ to ᾱ_prev (ᾱ_prev = 1: to the clean sample) given the
 * network output at x. Discrete schedules and the continuous VP process (ᾱ = e^{-2t}) share it.
 */
export function reverseStepAt(x: Tensor, output: Tensor, ab: number, abPrev: number, opts: StepOptions): Tensor {
  return tidy(() => {
    const [sa, ss] = [Math.sqrt(ab), Math.sqrt(1 - ab)];
    // x0 and ε estimates from either parameterisation.
    let x0 = opts.prediction === 'v' ? sub(mul(x, sa), mul(output, ss)) : opts.prediction === 'sample' ? output : mul(sub(x, mul(output, ss)), 1 / sa);
    let eps = opts.prediction === 'v' ? add(mul(x, ss), mul(output, sa)) : opts.prediction === 'sample' ? mul(sub(x, mul(output, sa)), 1 / ss) : output;
    if (opts.clip !== null) {
      x0 = clamp(x0, -opts.clip, opts.clip);
      eps = mul(sub(x, mul(x0, sa)), 1 / ss);
    }
    const final = abPrev >= 1;
    const noise = () => randn(x.shape, { seed: opts.noiseSeed });
    if (opts.sampler === 'ddim') {
      const sigma = final ? 0 : opts.eta * Math.sqrt(posteriorVariance(ab, abPrev));
      let next = add(mul(x0, Math.sqrt(abPrev)), mul(eps, Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma))));
      if (sigma > 0) next = add(next, mul(noise(), sigma));
      return next;
    }
    // DDPM posterior mean of q(x_prev | x_t, x0), then its fixed-small variance.
    const beta = 1 - ab / abPrev;
    const mean = add(mul(x0, (Math.sqrt(abPrev) * beta) / (1 - ab)), mul(x, (Math.sqrt(ab / abPrev) * (1 - abPrev)) / (1 - ab)));
    return final ? mean : add(mean, mul(noise(), Math.sqrt(posteriorVariance(ab, abPrev))));
  });
}

/** One reverse step from step t to prev (prev = -1: to the clean sample) of a discrete schedule. */
export function reverseStep(
  schedule: NoiseSchedule,
  x: Tensor,
  output: Tensor,
  t: number,
  prev: number,
  opts: Required<Omit<SamplerOptions, 'steps' | 'seed'>> & { noiseSeed: number },
): Tensor {
  const { clipSample, ...rest } = opts;
  return reverseStepAt(x, output, schedule.alphaBar(t), schedule.alphaBar(prev), { ...rest, clip: clipSample ? 1 : null });
}

/**
 * Draws one batch of the given shape [B, ...] by running the reverse process from pure noise.
 * Memory stays flat: each step's temporaries are freed before the next.
 */
export function sampleBatch(schedule: NoiseSchedule, model: Denoiser, shape: readonly number[], options: SamplerOptions = {}): Tensor {
  const steps = reverseProcess(schedule, model, shape, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * The reverse process one step at a time: yields (steps done, total) after each step and returns
 * the samples, so a caller can show progress and let the GPU keep pace between steps.
 */
export function* reverseProcess(schedule: NoiseSchedule, model: Denoiser, shape: readonly number[], options: SamplerOptions = {}): Generator<[number, number], Tensor> {
  const sampler = options.sampler ?? 'ddpm';
  const o = {
    sampler,
    eta: options.eta ?? (sampler === 'ddpm' ? 1 : 0),
    clipSample: options.clipSample ?? true,
    prediction: options.prediction ?? 'epsilon',
  } as const;
  if (!(o.eta >= 0)) throw new Error(`sampler: eta must be >= 0, got ${o.eta}`);
  const seed = options.seed ?? 0;
  const ts = leadingTimesteps(schedule.steps, options.steps ?? (sampler === 'ddpm' ? schedule.steps : 50));
  let x = noGrad(() => randn(shape, { seed: deriveSeed(seed, 0) }));
  try {
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i];
      const prev = i + 1 < ts.length ? ts[i + 1] : -1;
      const next = noGrad(() => tidy(() => reverseStep(schedule, x, model(x, t), t, prev, { ...o, noiseSeed: deriveSeed(seed, i + 1) })));
      x.dispose();
      x = next;
      yield [i + 1, ts.length];
    }
  } catch (e) {
    x.dispose();
    throw e;
  }
  return x;
}

/** Classifier-free guidance: ε = ε_uncond + w (ε_cond - ε_uncond), from a model run on both. */
export function guided(cond: Denoiser, uncond: Denoiser, scale: number): Denoiser {
  return (x, t) =>
    tidy(() => {
      const c = cond(x, t);
      const u = uncond(x, t);
      return add(u, mul(sub(c, u), scale));
    });
}
