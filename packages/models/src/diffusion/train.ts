/**
 * DDPM training (ε-, v- or x0-prediction with uniform timesteps) and batched sampling of a UNet2D.
 */
import {
  Adam,
  BestWeights,
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
import { gatherRows } from '../data/batches.js';
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
  /**
   * Early stopping: held-out images whose loss (`validationLoss`: fixed timesteps and noise, so
   * it moves only with the weights) is measured every `validateEvery` steps and at the last
   * step; the weights of the best measurement are written back at the end.
   */
  validation?: ImageSet;
  validateEvery?: number;
  /** Stop after this many measurements without improvement (default: run all steps). */
  patience?: number;
}

export interface ValidationRecord {
  /** (step, validation loss) pairs. */
  history: [number, number][];
  /** The step whose weights were kept, and its loss. */
  bestStep: number;
  best: number;
}

export interface TrainResult {
  /** (step, loss) pairs read every logEvery steps. */
  losses: [number, number][];
  seconds: number;
  /** The EMA of the weights, if one was kept (apply it with ema.copyTo(model) before sampling). */
  ema: EMA | null;
  /** Steps run (fewer than `steps` when early stopping ended training). */
  steps: number;
  validation?: ValidationRecord;
}

/**
 * The mean diffusion loss of held-out images with `repeats` fixed (timestep, noise) draws per
 * image: timesteps evenly spread over the schedule, noise from `seed`, so two measurements differ
 * only through the weights.
 */
export async function validationLoss(model: UNet2D, schedule: NoiseSchedule, set: ImageSet, o: { seed?: number; repeats?: number; prediction?: Prediction; batchSize?: number } = {}): Promise<number> {
  const repeats = o.repeats ?? 4;
  const total = set.n * repeats;
  const d = set.channels * set.height * set.width;
  const batchSize = o.batchSize ?? 256;
  let sum = 0;
  for (let start = 0, k = 0; start < total; start += batchSize, k++) {
    const b = Math.min(batchSize, total - start);
    const rows = Int32Array.from({ length: b }, (_, i) => (start + i) % set.n);
    const x = gatherRows(set.images, d, rows);
    const steps = Int32Array.from({ length: b }, (_, i) => Math.min(schedule.steps - 1, Math.floor(((start + i + 0.5) / total) * schedule.steps)));
    const loss = noGrad(() =>
      tidy(() => {
        const labels = set.labels && model.config.numClassEmbeds ? tensor(Int32Array.from(rows, (r) => set.labels![r])) : undefined;
        return diffusionLoss(model, schedule, tensor(x, [b, set.channels, set.height, set.width]), labels, tensor(steps), deriveSeed(o.seed ?? 0, k), o.prediction);
      }),
    );
    sum += (await loss.item()) * b;
    loss.dispose();
  }
  return sum / total;
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
  const validateEvery = o.validateEvery ?? o.logEvery ?? 50;
  const patience = o.patience ?? Infinity;
  if (o.validation && !(validateEvery >= 1 && patience >= 1)) throw new Error(`trainDiffusion: validateEvery (${validateEvery}) and patience (${patience}) must be at least 1`);
  const best = o.validation ? new BestWeights(trainable) : null;
  const history: [number, number][] = [];
  let stepsRun = 0;
  const started = performance.now();
  const shape = [o.batchSize, data.channels, data.height, data.width];
  try {
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
      stepsRun = step + 1;
      const validating = best !== null && (stepsRun % validateEvery === 0 || stepsRun === o.steps);
      await log.record(stepsRun, loss, validating);
      if (validating) {
        model.eval();
        const v = await validationLoss(model, schedule, o.validation!, { seed: deriveSeed(seed, 3), prediction: o.prediction });
        model.train();
        if (!Number.isFinite(v)) throw new Error(`trainDiffusion: the validation loss became ${v} at step ${stepsRun}`);
        history.push([stepsRun, v]);
        best!.offer(v, stepsRun);
        if (best!.sinceBest >= patience) break;
      }
    }
    log.done();
    best?.restore();
  } finally {
    best?.dispose();
  }
  const validation = best ? { history, bestStep: best.bestStep, best: best.best } : undefined;
  return { losses: log.losses, seconds: (performance.now() - started) / 1000, ema, steps: stepsRun, ...(validation ? { validation } : {}) };
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
