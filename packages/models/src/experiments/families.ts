/**
 * The model families a transfer experiment compares, behind one interface: U-Net diffusion
 * (DDPM training, DDIM sampling) and coupling flows. Each family builds a source model, a
 * baseline and the transfer copies, and trains any of them under a budget that stops on a
 * held-out validation loss.
 */
import type { CheckpointingOptions } from '@transfuse/core';
import { loadCheckpoint, saveCheckpoint } from '@transfuse/core/node';
import { NoiseSchedule } from '../diffusion/schedule.js';
import type { ImageSet } from '../data/image-set.js';
import { sampleImages, trainDiffusion } from '../diffusion/train.js';
import { UNET_PRESETS, type UNet2D, type UNet2DConfig } from '../diffusion/unet.js';
import type { Flow } from '../flows/flow.js';
import { flowPreset } from '../flows/presets.js';
import { evalBitsPerDim, imageFlowData, sampleFlow, trainFlow } from '../flows/train.js';
import { baselineModel, conditionalTransferModel, unconditionalTransferModel } from '../transfer/diffusion.js';
import { baselineFlow, conditionalFlowTransfer, standardBaseConfig, unconditionalFlowTransfer } from '../transfer/flows.js';

export const FAMILIES = ['diffusion', 'flow'] as const;
export type Family = (typeof FAMILIES)[number];

/** How long one training run may go, and when it stops. */
export interface TrainingBudget {
  /** The most steps the run may take. */
  cap: number;
  batchSize: number;
  lr: number;
  /** Validation loss measured every this many steps (and at the cap). */
  validateEvery: number;
  /**
   * Measure at least once per this many passes over the training split (a small split is overfit
   * within `validateEvery` steps): the interval is the smaller of the two. Denser checks choose
   * the kept step more finely; they do not stop a run sooner (see `patience`).
   */
  validateEpochs?: number;
  /** Measure before the first step too, so the starting weights (a transferred model untouched) can be kept. */
  validateAtStart?: boolean;
  /**
   * Stop after `patience` x `validateEvery` steps without improvement, however dense the checks;
   * the best weights are kept. (Counted in checks of the denser interval, the validation noise of
   * a small split stopped a baseline at step 420 where the plain checks ran it to 1,000.)
   */
  patience: number;
  /**
   * Validate, keep and sample an exponential moving average of the weights with this largest
   * decay (absent: the raw weights). The raw weights of a small target set move so much between
   * nearby steps that the kept step's W1 varied by as much as the transfer effect.
   */
  emaDecay?: number;
  /**
   * Flows: set ActNorm from up to ACTNORM_INIT_IMAGES of the run's training images with each
   * pixel's variance shrunk toward the layer's pooled one with the weight of this many images
   * (absent: from the first batch alone, Glow's init, which at n_t = 100 ruined every target-only
   * flow before its first step: they kept their random initialisation).
   */
  actnormPrior?: number;
}

/** The training images a flow's ActNorm init reads under `actnormPrior`: more than one batch, few enough for one pass. */
export const ACTNORM_INIT_IMAGES = 1024;

/** The steps between validation checks of a run on `n` training images under budget `b`. */
export function checkInterval(b: TrainingBudget, n: number): number {
  if (b.validateEpochs === undefined) return b.validateEvery;
  return Math.min(b.validateEvery, Math.max(1, Math.ceil((b.validateEpochs * n) / b.batchSize)));
}

/** What one training run used: the steps it ran, the step whose weights it kept, its validation curve. */
export interface TrainRecord {
  steps: number;
  bestStep: number;
  /** Images seen: steps x batch size. */
  images: number;
  curve: [number, number][];
  seconds: number;
  /** Steps between its validation checks (absent in cells written before the interval could depend on n). */
  validateEvery?: number;
}

export interface CellTrainOptions {
  seed: number;
  label: string;
  /**
   * A folder of this run's checkpoints (one per validation check, early-stopping state included):
   * a run that finds one there resumes from it and ends as if never stopped. SIGINT/SIGTERM (or
   * `abort`) save one and throw TrainingInterrupted. The caller removes the folder when done.
   */
  checkpointDir?: string;
  /** Stops the run as SIGINT does (needs checkpointDir). */
  abort?: AbortSignal;
}

/** A run with a checkpoint folder was stopped by a signal or its abort option; rerunning it resumes. */
export class TrainingInterrupted extends Error {
  constructor(
    readonly dir: string,
    readonly step: number,
  ) {
    super(`training stopped at step ${step}; its checkpoint is in ${dir}, and running it again resumes from there`);
    this.name = 'TrainingInterrupted';
  }
}

export interface Generative {
  /** Trains on `data`, validating on `validation`, keeping the weights of the best check. */
  train(data: ImageSet, validation: ImageSet, budget: TrainingBudget, o: CellTrainOptions): Promise<TrainRecord>;
  /** Likelihood models: mean bits/dim of these images. */
  bitsPerDim?(data: ImageSet): Promise<number>;
  /** n images in [-1, 1] (labels for a conditional model). */
  sample(n: number, labels: Int32Array | undefined, seed: number): Promise<Float32Array>;
  save(dir: string): Promise<void>;
  /** Replaces the weights with those saved in dir. */
  load(dir: string): void;
  dispose(): void;
}

export interface FamilyRunner {
  /** The second transfer procedure's name ('fresh-head', 'freeze-deep' or 'fresh'). */
  variantName: string;
  baseline(seed: number): Generative;
  /** A fresh source model to pre-train. */
  source(seed: number): Generative;
  transfer(source: Generative, variant: boolean, seed: number): Generative;
}

export interface FamilyShape {
  size: number;
  conditional: boolean;
  numClasses: number;
}

/** A trainer's result as a TrainRecord (the model holds the kept weights; their average is freed), or TrainingInterrupted when a signal stopped it. */
function record(r: { steps: number; interrupted: boolean; seconds: number; ema: { dispose(): void } | null; validation?: { bestStep: number; history: [number, number][] } }, b: TrainingBudget, every: number, o: CellTrainOptions): TrainRecord {
  r.ema?.dispose();
  if (r.interrupted) throw new TrainingInterrupted(o.checkpointDir!, r.steps);
  // The interval is written only where the budget could make it differ from validateEvery, so older cells stay byte-identical.
  return { steps: r.steps, bestStep: r.validation!.bestStep, images: r.steps * b.batchSize, curve: r.validation!.history, seconds: r.seconds, ...(b.validateEpochs !== undefined ? { validateEvery: every } : {}) };
}

/** The trainer's validation options under budget b for n training images: the same patience in steps at any interval. */
export function validationChecks(b: TrainingBudget, n: number): { validateEvery: number; patience: number; validateAtStart?: true; emaDecay?: number } {
  const every = checkInterval(b, n);
  return { validateEvery: every, patience: Math.ceil((b.patience * b.validateEvery) / every), ...(b.validateAtStart ? { validateAtStart: true } : {}), ...(b.emaDecay ? { emaDecay: b.emaDecay } : {}) };
}

/** Checkpoints at every validation check, resumed when the folder holds one of this run (its settings are checked). */
function cellCheckpoint(every: number, o: CellTrainOptions): CheckpointingOptions | undefined {
  if (o.abort && !o.checkpointDir) throw new Error('train: abort needs checkpointDir (the run is saved there before it stops)');
  return o.checkpointDir ? { dir: o.checkpointDir, every, keep: 2, resume: true, ...(o.abort ? { abort: o.abort } : {}) } : undefined;
}

/** U-Net diffusion; conditional transfer freezes the class embedding. */
export function diffusionFamily(shape: FamilyShape, unet: keyof typeof UNET_PRESETS, samplerSteps: number): FamilyRunner {
  const config: UNet2DConfig = { sampleSize: shape.size, ...UNET_PRESETS[unet], numClassEmbeds: shape.conditional ? shape.numClasses : undefined };
  const schedule = new NoiseSchedule();
  const wrap = (model: UNet2D): Generative & { unet: UNet2D } => ({
    async train(data, validation, b, o) {
      model.train();
      const c = validationChecks(b, data.n);
      const r = await trainDiffusion(model, schedule, data, {
        steps: b.cap,
        batchSize: b.batchSize,
        lr: b.lr,
        warmup: Math.floor(Math.min(100, b.cap / 10)),
        finalLrFraction: 0.1,
        seed: o.seed,
        label: o.label,
        logEvery: Math.max(10, Math.floor(b.cap / 10)),
        validation,
        ...c,
        checkpoint: cellCheckpoint(c.validateEvery, o),
      });
      return record(r, b, c.validateEvery, o);
    },
    sample(n, labels, seed) {
      model.eval();
      return sampleImages(model, schedule, { n, labels }, { sampler: 'ddim', steps: samplerSteps, seed, batchSize: 256 });
    },
    save: (dir) => saveCheckpoint(dir, { model, step: 0, extra: { config } }),
    load: (dir) => void loadCheckpoint(dir, { model }),
    dispose: () => model.dispose(),
    unet: model,
  });
  const unetOf = (g: Generative) => (g as Generative & { unet: UNet2D }).unet;
  return {
    variantName: shape.conditional ? 'fresh-head' : 'freeze-deep',
    baseline: (seed) => wrap(baselineModel(config, seed)),
    source: (seed) => wrap(baselineModel(config, seed)),
    transfer: (src, variant, seed) =>
      wrap(
        shape.conditional
          ? conditionalTransferModel(unetOf(src), variant ? 'fresh-head' : 'finetune', seed)
          : unconditionalTransferModel(unetOf(src), variant ? 'freeze-deep' : 'finetune', seed),
      ),
  };
}

/**
 * Coupling flows (the 'small' presets on dequantised pixels in (0, 1), sampled back to [-1, 1]).
 * Conditional transfer freezes the shared condition embedding; unconditional transfer freezes
 * the learned base (the law of U) and fits g_t from g_s ('finetune') or afresh ('fresh').
 */
export function flowFamily(shape: FamilyShape): FamilyRunner {
  const dim = shape.size * shape.size;
  const config = shape.conditional
    ? flowPreset('small-cond', { dim, condition: { numClasses: shape.numClasses, embedding: 10 } })
    : flowPreset('small', { dim, base: 'diagonal' });
  // Image subsets keep their labels for reporting; only a conditional flow reads them.
  const asFlowData = (data: ImageSet) => ({ ...imageFlowData(data), labels: shape.conditional ? data.labels : null });
  const wrap = (flow: Flow): Generative & { flow: Flow } => ({
    async train(data, validation, b, o) {
      flow.train();
      const c = validationChecks(b, data.n);
      const r = await trainFlow(flow, asFlowData(data), {
        steps: b.cap,
        batchSize: b.batchSize,
        lr: b.lr,
        seed: o.seed,
        label: o.label,
        clipNorm: 1,
        ...(b.actnormPrior !== undefined ? { actnormInit: { images: ACTNORM_INIT_IMAGES, prior: b.actnormPrior } } : {}),
        logEvery: Math.max(10, Math.floor(b.cap / 10)),
        validation: asFlowData(validation),
        ...c,
        checkpoint: cellCheckpoint(c.validateEvery, o),
      });
      return record(r, b, c.validateEvery, o);
    },
    sample(n, labels, seed) {
      flow.eval();
      return sampleFlow(flow, n, { seed, labels, images: true });
    },
    async bitsPerDim(data) {
      flow.eval();
      return (await evalBitsPerDim(flow, asFlowData(data), { seed: 0 })).bitsPerDim;
    },
    save: (dir) => saveCheckpoint(dir, { model: flow, step: 0, extra: { config } }),
    load: (dir) => void loadCheckpoint(dir, { model: flow }),
    dispose: () => flow.dispose(),
    flow,
  });
  const flowOf = (g: Generative) => (g as Generative & { flow: Flow }).flow;
  return {
    variantName: shape.conditional ? 'fresh-head' : 'fresh',
    baseline: (seed) => wrap(baselineFlow(shape.conditional ? config : standardBaseConfig(config), seed)),
    source: (seed) => wrap(baselineFlow(config, seed)),
    transfer: (src, variant, seed) =>
      wrap(
        shape.conditional
          ? conditionalFlowTransfer(flowOf(src), variant ? 'fresh-head' : 'finetune', seed)
          : unconditionalFlowTransfer(flowOf(src), variant ? 'fresh' : 'finetune', seed),
      ),
  };
}
