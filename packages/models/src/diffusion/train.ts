/**
 * DDPM training (ε-, v- or x0-prediction with uniform timesteps) and batched sampling of a UNet2D.
 */
import {
  Adam,
  BestWeights,
  checkOptionKeys,
  clipGradNorm,
  cosineWithWarmup,
  deriveSeed,
  EMA,
  emaWarmupDecay,
  LossLog,
  mean,
  noGrad,
  ProgressBar,
  randn,
  runtime,
  square,
  sub,
  tensor,
  tidy,
  trainingCheckpoints,
  type CheckpointingOptions,
  type Module,
  type Tensor,
} from '@transfuse/core';
import { gatherRows } from '../data/batches.js';
import { batches, type ImageSet } from '../data/image-set.js';
import { createRng } from '../data/prng.js';
import { reverseProcess, type Prediction, type SamplerOptions } from './sampler.js';
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
  /**
   * Largest decay of the exponential moving average of the weights, reached after a warmup (0
   * disables). With `validation`, the checks measure the averaged weights and the model ends
   * holding those of the best check.
   */
  emaDecay?: number;
  seed?: number;
  /** Read the loss back every this many steps (each read waits for the GPU). */
  logEvery?: number;
  /** Progress bar label; null for none. */
  label?: string | null;
  onLog?: (step: number, loss: number) => void;
  /** Sees the dataset rows of every batch (tests check that compared runs see the same data). */
  onBatch?: (indices: Int32Array) => void;
  /** Numbered checkpoints during training, resume, and save-and-stop on SIGINT/SIGTERM. */
  checkpoint?: CheckpointingOptions;
  /**
   * Early stopping: held-out images whose loss (`validationLoss`: fixed timesteps and noise, so
   * it moves only with the weights) is measured every `validateEvery` steps and at the last
   * step; the weights of the best measurement are written back at the end.
   */
  validation?: ImageSet;
  validateEvery?: number;
  /** Measure the validation loss before the first step too, so the starting weights (a transferred model untouched) can be the ones kept. */
  validateAtStart?: boolean;
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

const DIFFUSION_TRAIN_KEYS = ['steps', 'batchSize', 'lr', 'warmup', 'finalLrFraction', 'prediction', 'clipNorm', 'emaDecay', 'seed', 'logEvery', 'label', 'onLog', 'onBatch', 'checkpoint', 'validation', 'validateEvery', 'validateAtStart', 'patience'];

export interface TrainResult {
  /** (step, loss) pairs read every logEvery steps. */
  losses: [number, number][];
  seconds: number;
  /** The EMA of the weights, if one was kept (without validation, apply it with ema.copyTo(model) before sampling). */
  ema: EMA | null;
  /** Steps run (fewer than `steps` when early stopping or a signal ended training). */
  steps: number;
  /** A signal stopped training; the newest checkpoint holds the state to resume from. */
  interrupted: boolean;
  validation?: ValidationRecord;
}

/**
 * The mean diffusion loss of held-out images with `repeats` fixed (timestep, noise) draws per
 * image: timesteps evenly spread over the schedule, noise from `seed`, so two measurements differ
 * only through the weights.
 */
export async function validationLoss(model: UNet2D, schedule: NoiseSchedule, set: ImageSet, o: { seed?: number; repeats?: number; prediction?: Prediction; batchSize?: number } = {}): Promise<number> {
  checkOptionKeys('validationLoss', o, ['seed', 'repeats', 'prediction', 'batchSize']);
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
  checkOptionKeys('trainDiffusion', o, DIFFUSION_TRAIN_KEYS);
  if (!Number.isSafeInteger(o.steps) || o.steps < 1) throw new Error(`trainDiffusion: steps must be an integer >= 1, got ${o.steps}`);
  if (data.n < 1) throw new Error('trainDiffusion: the data set is empty');
  const seed = o.seed ?? 0;
  const trainable = model.parameters().filter((p) => p.requiresGrad);
  if (trainable.length === 0) throw new Error('trainDiffusion: the model has no trainable parameters (all frozen)');
  const opt = new Adam(trainable, { lr: o.lr });
  const lrFactor = cosineWithWarmup(o.warmup ?? 0, o.steps, { minFactor: o.finalLrFraction ?? 1 });
  // diffusers' warmup min(decay, (1 + n) / (10 + n)): a constant decay would keep a large share
  // of the random initial weights in the average for thousands of steps.
  const ema = o.emaDecay ? new EMA(model as Module, { decay: emaWarmupDecay(o.emaDecay) }) : null;
  const validateEvery = o.validateEvery ?? o.logEvery ?? 50;
  const patience = o.patience ?? Infinity;
  if (o.validation && !(validateEvery >= 1 && patience >= 1)) throw new Error(`trainDiffusion: validateEvery (${validateEvery}) and patience (${patience}) must be at least 1`);
  const best = o.validation ? new BestWeights(trainable) : null;
  // A checkpoint holds the early-stopping state too (best weights, scores), so a resumed run keeps the same step.
  const ckpt = o.checkpoint ? trainingCheckpoints('trainDiffusion', o.checkpoint, { model: model as Module, optimizer: opt, ema: ema ?? undefined, best: best ?? undefined }) : null;
  const history: [number, number][] = [];
  const settings = {
    steps: o.steps, batchSize: o.batchSize, lr: o.lr, warmup: o.warmup ?? 0, finalLrFraction: o.finalLrFraction ?? 1, prediction: o.prediction ?? 'epsilon', clipNorm: o.clipNorm ?? 1, emaDecay: o.emaDecay ?? 0, seed, n: data.n,
    validation: o.validation ? { n: o.validation.n, validateEvery, patience, ...(o.validateAtStart ? { atStart: true } : {}), ...(ema ? { weights: 'ema' } : {}) } : null,
  };
  /** Measures the validation loss of the weights at `step` (the averaged ones with an EMA: they are what gets sampled) and offers them to early stopping. */
  const check = async (step: number) => {
    const measure = async () => {
      const v = await validationLoss(model, schedule, o.validation!, { seed: deriveSeed(seed, 3), prediction: o.prediction });
      if (!Number.isFinite(v)) throw new Error(`trainDiffusion: the validation loss became ${v} at step ${step}`);
      history.push([step, v]);
      best!.offer(v, step);
    };
    model.eval();
    await (ema ? ema.withAveraged(model as Module, measure) : measure());
    model.train();
  };
  try {
    const resumed = ckpt?.resume({ trainer: 'trainDiffusion', settings });
    if (resumed && best) history.push(...(resumed.loop.history as [number, number][]));
    const first = resumed?.step ?? 0;
    const next = batches(data, o.batchSize, deriveSeed(seed, 1), first);
    // The timestep stream continues from its saved state; noise seeds follow from the step.
    let rng = createRng(deriveSeed(seed, 2));
    if (resumed) rng = createRng(resumed.loop.rng as number);
    const log = new LossLog('trainDiffusion', { steps: o.steps, logEvery: o.logEvery, label: o.label === null ? null : o.label ?? 'train', hint: 'lower the learning rate', onLog: o.onLog });
    if (resumed) log.losses.push(...(resumed.loop.losses as [number, number][]));
    const started = performance.now() - ((resumed?.loop.seconds as number | undefined) ?? 0) * 1000;
    const seconds = () => (performance.now() - started) / 1000;
    const shape = [o.batchSize, data.channels, data.height, data.width];
    let done = first;
    let interrupted = false;
    if (best && o.validateAtStart && first === 0) await check(0);
    for (let step = first; step < o.steps; step++) {
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
      done = step + 1;
      const validating = best !== null && (done % validateEvery === 0 || done === o.steps);
      await log.record(done, loss, validating);
      if (validating) {
        await check(done);
        if (best!.sinceBest >= patience) break;
      }
      if (ckpt && (await ckpt.afterStep(done, o.steps, () => ({ trainer: 'trainDiffusion', settings, loop: { rng: rng.state(), losses: log.losses, history, seconds: seconds() } })))) {
        interrupted = done < o.steps;
        break;
      }
    }
    log.done();
    best?.restore();
    const validation = best ? { history, bestStep: best.bestStep, best: best.best } : undefined;
    return { losses: log.losses, seconds: seconds(), ema, steps: done, interrupted, ...(validation ? { validation } : {}) };
  } finally {
    ckpt?.dispose();
    best?.dispose();
  }
}

export interface SampleOptions extends SamplerOptions {
  /** Images per GPU batch (memory stays flat across batches). */
  batchSize?: number;
  /** Progress bar label (one tick per reverse step of each batch); default none. */
  label?: string;
}

/**
 * Draws `labels.length` images (or `n` for an unconditional model) and returns them on the CPU,
 * [n, C, H, W] in [-1, 1]. Each batch gets its own derived seed.
 */
export async function sampleImages(model: UNet2D, schedule: NoiseSchedule, count: { n: number; labels?: Int32Array }, o: SampleOptions = {}): Promise<Float32Array> {
  checkOptionKeys('sampleImages', o, ['sampler', 'steps', 'eta', 'clipSample', 'prediction', 'seed', 'batchSize', 'label']);
  const { batchSize: perBatch, label, ...sampling } = o;
  const c = model.config;
  const size = c.sampleSize;
  const d = c.outChannels * size * size;
  const out = new Float32Array(count.n * d);
  const batchSize = perBatch ?? 256;
  const seed = o.seed ?? 0;
  const batchesTotal = Math.ceil(count.n / batchSize);
  let bar: ProgressBar | undefined;
  for (let start = 0, k = 0; start < count.n; start += batchSize, k++) {
    const b = Math.min(batchSize, count.n - start);
    const labels = count.labels ? tensor(count.labels.slice(start, start + b)) : undefined;
    const steps = reverseProcess(schedule, (xt, t) => model.forward(xt, t, labels), [b, c.inChannels, size, size], { ...sampling, seed: deriveSeed(seed, k) });
    let r = steps.next();
    for (; !r.done; r = steps.next()) {
      const [i, total] = r.value;
      if (label) {
        bar ??= new ProgressBar(total * batchesTotal, { label });
        bar.update(k * total + i);
      }
      // Lets the GPU catch up, so the bar shows work done rather than work recorded.
      await runtime().keepPace();
    }
    const x = r.value;
    out.set(await x.data(), start * d);
    x.dispose();
    labels?.dispose();
  }
  bar?.done();
  return out;
}
