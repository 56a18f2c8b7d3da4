/**
 * Tian & Shen's MNIST -> USPS benchmark as presets of the transfer experiment: MNIST digits as the
 * source, the USPS training file as the target (a seeded stratified 70/30 split: 5,103 / 2,188,
 * digit 3: 461 / 197), both at 16x16. `conditional: false` is the unconditional digit-3 task.
 */
import { join } from 'node:path';
import { loadDigits, uspsBenchmarkSplit } from '../data/digits.js';
import type { DigitImages } from '../data/mnist.js';
import { gatherRows } from '../data/batches.js';
import { USPS_SIDE } from '../data/usps.js';
import { writeJson } from '../io/files.js';
import { FAMILIES, type Family } from './families.js';
import { runAllCells, TransferExperiment, type TransferProtocol, type TransferResults } from './transfer-experiment.js';

export { FAMILIES, type Family };

/** A preset without the task's conditioning (conditional and digit 3 share them). */
export type MnistUspsPreset = Omit<TransferProtocol, 'conditional'>;

const budget = (cap: number, batchSize: number, lr: number, validateEvery: number, patience: number) => ({ cap, batchSize, lr, validateEvery, patience });
const ALL_ARMS = ['transfer', 'variant', 'baseline', 'matched'] as const;

export const MNIST_USPS_PRESETS: Record<'smoke' | 'demo' | 'cpu' | 'paper', MnistUspsPreset> = {
  // Minutes in CI: every arm, both families, two target sizes; proves the pipeline, not the science.
  smoke: {
    size: 16, seeds: [0], nsList: [200], ntList: [60, 'all'], evalN: 40,
    validationFraction: { source: 0.1, target: 0.2 }, maxValidation: 64,
    diffusion: { unet: 'tiny', samplerSteps: 4, arms: [...ALL_ARMS], source: budget(12, 8, 2e-3, 6, 100), target: budget(12, 8, 2e-3, 6, 100) },
    flow: { arms: [...ALL_ARMS], source: budget(12, 16, 1e-3, 6, 100), target: budget(12, 16, 1e-3, 6, 100) },
    classifier: { steps: 60, batchSize: 64, lr: 1e-3 },
  },
  // `npm run demo`: transfer, the baseline and the compute-matched baseline, in minutes on 2 cores.
  demo: {
    size: 16, seeds: [0], nsList: [10000], ntList: ['all'], evalN: 200,
    validationFraction: { source: 0.1, target: 0.1 }, maxValidation: 128,
    diffusion: { unet: 'tiny', samplerSteps: 10, arms: ['transfer', 'baseline', 'matched'], source: budget(300, 32, 3e-3, 50, 4), target: budget(150, 32, 3e-3, 25, 4) },
    classifier: { steps: 1500, batchSize: 64, lr: 1e-3 },
  },
  // A 2-core CPU in hours: the n_t sweep, 3 seeds, diffusion and the flows' best variant
  // (fresh-head conditional, fresh g_t for digit 3). Caps are upper bounds; runs stop on validation.
  cpu: {
    size: 16, seeds: [0, 1, 2], nsList: [100, 60000], ntList: [100, 1000, 'all'], evalN: 1000,
    validationFraction: { source: 0.1, target: 0.2 }, maxValidation: 500,
    diffusion: { unet: 'tiny', samplerSteps: 25, arms: ['transfer', 'baseline', 'matched'], source: budget(2000, 32, 3e-3, 200, 4), target: budget(1500, 32, 3e-3, 100, 5) },
    flow: { arms: ['variant', 'baseline', 'matched'], source: budget(3000, 64, 1e-3, 100, 5), target: budget(1500, 64, 1e-3, 50, 8) },
    classifier: { steps: 3000, batchSize: 64, lr: 1e-3 },
  },
  // A GPU: the paper's scale (all held-out digits, the `small` U-Net).
  paper: {
    size: 16, seeds: [0, 1, 2], nsList: [1000, 5000, 10000, 30000, 60000], ntList: [100, 300, 1000, 'all'], evalN: 2188,
    validationFraction: { source: 0.1, target: 0.2 }, maxValidation: 1000,
    diffusion: { unet: 'small', samplerSteps: 50, arms: [...ALL_ARMS], source: budget(30000, 128, 2e-4, 1000, 5), target: budget(15000, 128, 2e-4, 500, 5) },
    flow: { arms: [...ALL_ARMS], source: budget(20000, 256, 1e-3, 500, 5), target: budget(10000, 256, 1e-3, 250, 8) },
    classifier: { steps: 5000, batchSize: 128, lr: 1e-3 },
  },
};

/**
 * Budget settings that replace a preset's, for every family it runs: the knobs for a run whose
 * report says a budget decided it. Caps (`--source-cap`, `--target-cap`) for runs a cap ended;
 * `--target-check-epochs N` for target runs that kept their first check: they are checked at step
 * 0 (the starting weights are a candidate) and at least every N passes over their training split;
 * `--target-ema DECAY` for target runs whose raw weights are too noisy to pick a step from: an
 * average of the weights is validated, kept and sampled; `--target-lr` for target runs that overfit
 * a small split within a few steps at the preset's learning rate; `--target-actnorm-prior N` for
 * target flows that a small split's ActNorm init ruins (TrainingBudget.actnormPrior).
 */
export interface BudgetOverrides {
  sourceCap?: number;
  targetCap?: number;
  targetCheckEpochs?: number;
  targetEma?: number;
  targetLr?: number;
  targetActnormPrior?: number;
}

export function withBudgets<P extends MnistUspsPreset>(preset: P, o: BudgetOverrides): P {
  for (const [flag, v] of [['--source-cap', o.sourceCap], ['--target-cap', o.targetCap], ['--target-check-epochs', o.targetCheckEpochs]] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) throw new Error(`${flag} must be a whole number of at least 1, got ${v}`);
  }
  if (o.targetEma !== undefined && !(o.targetEma > 0 && o.targetEma < 1)) throw new Error(`--target-ema must be a decay between 0 and 1 (exclusive), got ${o.targetEma}`);
  if (o.targetLr !== undefined && !(o.targetLr > 0 && o.targetLr <= 1)) throw new Error(`--target-lr must be a learning rate above 0 and at most 1, got ${o.targetLr}`);
  if (o.targetActnormPrior !== undefined && !(o.targetActnormPrior >= 0 && Number.isFinite(o.targetActnormPrior))) throw new Error(`--target-actnorm-prior must be a number of images >= 0, got ${o.targetActnormPrior}`);
  if (o.targetActnormPrior !== undefined && !preset.flow) throw new Error('--target-actnorm-prior sets the flows\' ActNorm init; this preset runs no flows');
  const out = structuredClone(preset);
  for (const f of FAMILIES) {
    const fp = out[f];
    if (!fp) continue;
    if (o.sourceCap !== undefined) fp.source.cap = o.sourceCap;
    if (o.targetCap !== undefined) fp.target.cap = o.targetCap;
    if (o.targetCheckEpochs !== undefined) fp.target = { ...fp.target, validateEpochs: o.targetCheckEpochs, validateAtStart: true };
    if (o.targetEma !== undefined) fp.target = { ...fp.target, emaDecay: o.targetEma };
    if (o.targetLr !== undefined) fp.target.lr = o.targetLr;
    if (o.targetActnormPrior !== undefined && f === 'flow') fp.target = { ...fp.target, actnormPrior: o.targetActnormPrior };
  }
  return out;
}

export interface MnistUspsOptions {
  preset: MnistUspsPreset;
  presetName: string;
  conditional: boolean;
  dataDir: string;
  out: string;
  /** A results folder whose source cells this run takes (TransferExperimentOptions.sourcesFrom). */
  sourcesFrom?: string;
  log?: (msg: string) => void;
}

export const MNIST_USPS_SPLIT_SEED = 0;

/** The classes kept: all ten for the conditional task, the threes for the unconditional one. */
export const mnistUspsClasses = (conditional: boolean): number[] | undefined => (conditional ? undefined : [3]);

/** The experiment on its results folder (it checks the folder's config), ready to run its cells. */
export function mnistUspsExperiment(o: MnistUspsOptions): TransferExperiment {
  const split = uspsBenchmarkSplit(o.dataDir, MNIST_USPS_SPLIT_SEED);
  const rows = (idx: Int32Array): DigitImages => ({ ...split.raw, images: gatherRows(split.raw.images, USPS_SIDE * USPS_SIDE, idx), labels: Int32Array.from(idx, (i) => split.raw.labels[i]), n: idx.length });
  const experiment = new TransferExperiment({
    name: o.conditional ? 'mnist-usps-conditional' : 'mnist-usps-digit3',
    presetName: o.presetName,
    protocol: { ...o.preset, conditional: o.conditional },
    source: loadDigits(o.dataDir, 'mnist', 'train'),
    target: rows(split.train),
    targetTest: rows(split.test),
    classes: mnistUspsClasses(o.conditional),
    splitSeed: MNIST_USPS_SPLIT_SEED,
    sourceName: 'MNIST',
    targetName: 'USPS',
    out: o.out,
    sourcesFrom: o.sourcesFrom,
    log: o.log,
  });
  writeJson(join(o.out, 'usps-split.json'), { seed: MNIST_USPS_SPLIT_SEED, train: Array.from(split.train), test: Array.from(split.test) });
  return experiment;
}

export async function runMnistUsps(o: MnistUspsOptions): Promise<TransferResults> {
  return runAllCells(mnistUspsExperiment(o));
}
