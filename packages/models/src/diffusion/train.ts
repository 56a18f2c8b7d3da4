/**
 * DDPM training (ε-, v- or x0-prediction with uniform timesteps) and batched sampling of a UNet2D.
 */
import {
  Adam,
  clipGradNorm,
  cosineWithWarmup,
  deriveSeed,
  EMA,
  emaWarmupDecay,
  LossLog,
  mean,
  noGrad,
  randn,
  square,
  sub,
  tensor,
  tidy,
  type Module,
  type Tensor,
} from '@transfuse/core';
import { batches, type ImageSet } from '../data/image-set.js';
import { createRng } from '../data/prng.js';
import { sampleBatch, type Prediction, type SamplerOptions } from './sampler.js';
import type { NoiseSchedule } from './schedule.js';
import type { UNet2D } from './unet.js';

/** The ε-, v- or x0-prediction loss of one batch: mean over pixels of (model(x_t, t) - target)². */
export function diffusionLoss(model: UNet2D, schedule: NoiseSchedule, x0: Tensor, labels: Tensor | undefined, t: Tensor, seed: number, prediction: Prediction = 'epsilon'): Tensor {
  return tidy(() => {
    const noise = randn(x0.shape, { seed });
    const xt = schedule.addNoise(x0, noise, t);
    const target = prediction === 'v' ? schedule.velocity(x0, noise, t) : prediction === 'sample' ? x0 : noise;
    return mean(square(sub(model.forward(xt, t, labels), target)));
  });
}

export interface DiffusionTrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  /** Linear warmup steps before the cosine decay (0: constant LR). */
  warmup?: number;
  /** Decay to this fraction of lr by the last step with a cosine (default 1: no decay). */
  finalLrFraction?: number;
  prediction?: Prediction;
  /** Clip the global gradient norm (default 1; 0 disables). */
  clipNorm?: number;
  /** Largest decay of the exponential moving average of the weights, reached after a warmup (0 disables). */
  emaDecay?: number;
  seed?: number;
  /** Read the loss back every this many steps (each read waits for the GPU). */
  logEvery?: number;
  /** Progress bar label; null for none. */
  label?: string | null;
  onLog?: (step: number, loss: number) => void;
  /** Sees the dataset rows of every batch (tests check that compared runs see the same data). */
  onBatch?: (indices: Int32Array) => void;
}

export interface TrainResult {
  /** (step, loss) pairs read every logEvery steps. */
  losses: [number, number][];
  seconds: number;
  /** The EMA of the weights, if one was kept (apply it with ema.copyTo(model) before sampling). */
  ema: EMA | null;
}

/** Trains the parameters of `model` that require grad (frozen ones stay bit-identical). */
export async function trainDiffusion(model: UNet2D, schedule: NoiseSchedule, data: ImageSet, o: DiffusionTrainOptions): Promise<TrainResult> {
  const seed = o.seed ?? 0;
  const trainable = model.parameters().filter((p) => p.requiresGrad);
  if (trainable.length === 0) throw new Error('trainDiffusion: the model has no trainable parameters (all frozen)');
  const opt = new Adam(trainable, { lr: o.lr });
  const lrFactor = cosineWithWarmup(o.warmup ?? 0, o.steps, { minFactor: o.finalLrFraction ?? 1 });
  // diffusers' warmup min(decay, (1 + n) / (10 + n)): a constant decay would keep a large share
  // of the random initial weights in the average for thousands of steps.
  const ema = o.emaDecay ? new EMA(model as Module, { decay: emaWarmupDecay(o.emaDecay) }) : null;
  const next = batches(data, o.batchSize, deriveSeed(seed, 1));
  const rng = createRng(deriveSeed(seed, 2));
  const log = new LossLog('trainDiffusion', { steps: o.steps, logEvery: o.logEvery, label: o.label === null ? null : o.label ?? 'train', hint: 'lower the learning rate', onLog: o.onLog });
  const started = performance.now();
  const shape = [o.batchSize, data.channels, data.height, data.width];
  for (let step = 0; step < o.steps; step++) {
    opt.setLrFactor(lrFactor(step));
    const loss = tidy(() => {
      const b = next();
      o.onBatch?.(b.indices);
      const t = tensor(Int32Array.from({ length: o.batchSize }, () => rng.int(schedule.steps)));
      // Labels condition only a class-conditional model (digit subsets keep theirs for reporting).
      const labels = b.labels && model.config.numClassEmbeds ? tensor(b.labels) : undefined;
      const l = diffusionLoss(model, schedule, tensor(b.x, shape), labels, t, deriveSeed(seed, 1000 + step), o.prediction);
      l.backward();
      if ((o.clipNorm ?? 1) > 0) clipGradNorm(trainable, o.clipNorm ?? 1);
      opt.step();
      opt.zeroGrad();
      ema?.update();
      return l;
    });
    await log.record(step + 1, loss);
  }
  log.done();
  return { losses: log.losses, seconds: (performance.now() - started) / 1000, ema };
}

export interface SampleOptions extends SamplerOptions {
  /** Images per GPU batch (memory stays flat across batches). */
  batchSize?: number;
}

/**
 * Draws `labels.length` images (or `n` for an unconditional model) and returns them on the CPU,
 * [n, C, H, W] in [-1, 1]. Each batch gets its own derived seed.
 */
export async function sampleImages(model: UNet2D, schedule: NoiseSchedule, count: { n: number; labels?: Int32Array }, o: SampleOptions = {}): Promise<Float32Array> {
  const c = model.config;
  const size = c.sampleSize;
  const d = c.outChannels * size * size;
  const out = new Float32Array(count.n * d);
  const batchSize = o.batchSize ?? 256;
  const seed = o.seed ?? 0;
  for (let start = 0, k = 0; start < count.n; start += batchSize, k++) {
    const b = Math.min(batchSize, count.n - start);
    const labels = count.labels ? tensor(count.labels.slice(start, start + b)) : undefined;
    const x = noGrad(() => sampleBatch(schedule, (xt, t) => model.forward(xt, t, labels), [b, c.inChannels, size, size], { ...o, seed: deriveSeed(seed, k) }));
    out.set(await x.data(), start * d);
    x.dispose();
    labels?.dispose();
  }
  return out;
}
