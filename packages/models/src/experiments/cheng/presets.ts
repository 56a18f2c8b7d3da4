/** The presets of both experiments and the paper's published tables. */
import type { MlpScoreNetConfig } from '../../diffusion/mlp.js';

export interface NetSizes {
  encoder: { hidden: number; depth: number; out: number; output: 'linear' | 'sigmoid' };
  /** prediction: what f outputs (default 'epsilon'). */
  head: { hidden: number; depth: number; prediction?: MlpScoreNetConfig['prediction'] };
  timeDim: number;
}

export interface ChengCommon extends NetSizes {
  mList: number[];
  seeds: number[];
  nTest: number;
  /** Pairs per source task. */
  nSource: number;
  pretrain: { steps: number; batchSize: number; lr: number };
  /** Fine-tuning and scratch (batch = m). */
  target: { steps: number; lr: number };
  sampler: { steps: number; samples: number };
}

export interface ChengSyntheticPreset extends ChengCommon {
  targetBetas: number[];
  reference: { burnIn: number; samples: number };
}

export interface ChengRestorationPreset extends ChengCommon {
  /** Image side (28: the paper's 784 pixels). */
  size: number;
}

export const SOURCE_BETAS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

export const CHENG_SYNTHETIC_PRESETS: Record<'smoke' | 'cpu' | 'paper', ChengSyntheticPreset> = {
  // CI: proves the pipeline end to end, not the science.
  smoke: {
    targetBetas: [5.5, 15], mList: [10, 50], seeds: [0], nTest: 12, nSource: 64,
    encoder: { hidden: 32, depth: 3, out: 10, output: 'linear' }, head: { hidden: 32, depth: 2 }, timeDim: 8,
    pretrain: { steps: 150, batchSize: 16, lr: 3e-3 }, target: { steps: 100, lr: 3e-3 },
    sampler: { steps: 8, samples: 8 }, reference: { burnIn: 300, samples: 1000 },
  },
  // Hours on a 2-core CPU with software WebGPU.
  cpu: {
    targetBetas: [5.5, 15], mList: [10, 20, 30, 40, 50, 100], seeds: [0, 1, 2], nTest: 100, nSource: 1000,
    encoder: { hidden: 128, depth: 5, out: 10, output: 'linear' }, head: { hidden: 128, depth: 2 }, timeDim: 16,
    pretrain: { steps: 4000, batchSize: 32, lr: 1e-3 }, target: { steps: 2000, lr: 1e-3 },
    sampler: { steps: 50, samples: 32 }, reference: { burnIn: 2000, samples: 20000 },
  },
  // The paper's sizes (a GPU): batch 512 over 10 sources = 52 per source per step.
  paper: {
    targetBetas: [5.5, 15], mList: [10, 20, 30, 40, 50, 100], seeds: [0, 1, 2, 3, 4], nTest: 100, nSource: 1000,
    encoder: { hidden: 512, depth: 5, out: 10, output: 'linear' }, head: { hidden: 128, depth: 2 }, timeDim: 16,
    pretrain: { steps: 400_000, batchSize: 52, lr: 3e-4 }, target: { steps: 200_000, lr: 3e-4 },
    sampler: { steps: 100, samples: 100 }, reference: { burnIn: 5000, samples: 100_000 },
  },
};

export const CHENG_RESTORATION_PRESETS: Record<'smoke' | 'cpu' | 'paper', ChengRestorationPreset> = {
  smoke: {
    size: 10, mList: [10, 50], seeds: [0], nTest: 12, nSource: 32,
    encoder: { hidden: 32, depth: 3, out: 16, output: 'linear' }, head: { hidden: 64, depth: 3, prediction: 'sample' }, timeDim: 8,
    pretrain: { steps: 150, batchSize: 8, lr: 3e-3 }, target: { steps: 100, lr: 3e-3 },
    sampler: { steps: 8, samples: 4 },
  },
  cpu: {
    size: 28, mList: [10, 20, 30, 40, 50, 100], seeds: [0, 1], nTest: 100, nSource: 1000,
    encoder: { hidden: 256, depth: 5, out: 64, output: 'linear' }, head: { hidden: 256, depth: 3, prediction: 'sample' }, timeDim: 16,
    pretrain: { steps: 3000, batchSize: 16, lr: 1e-3 }, target: { steps: 2000, lr: 1e-3 },
    sampler: { steps: 50, samples: 16 },
  },
  // 2K epochs of 45,000 images at batch 512 (57 per digit) ≈ 176K steps, lr 3e-4 cosine-annealed.
  paper: {
    size: 28, mList: [10, 20, 30, 40, 50, 100], seeds: [0, 1, 2], nTest: 100, nSource: 5000,
    encoder: { hidden: 512, depth: 5, out: 64, output: 'linear' }, head: { hidden: 512, depth: 3, prediction: 'sample' }, timeDim: 16,
    pretrain: { steps: 176_000, batchSize: 57, lr: 3e-4 }, target: { steps: 20_000, lr: 3e-4 },
    sampler: { steps: 100, samples: 32 },
  },
};

export const PAPER_TABLES: Record<string, { finetune: number[]; scratch: number[] }> = {
  'beta 5.5': { finetune: [14.47, 3.68, 2.45, 1.82, 1.9, 0.91], scratch: [21.99, 10.61, 5.71, 2.38, 1.77, 1.04] },
  'beta 15': { finetune: [6.14, 2.65, 1.61, 1.08, 0.96, 0.45], scratch: [24.41, 20.62, 18.67, 13.49, 7.03, 1.23] },
  'digit 0': { finetune: [0.3799, 0.2846, 0.2544, 0.2406, 0.2404, 0.2268], scratch: [0.4409, 0.318, 0.2746, 0.2551, 0.2501, 0.2344] },
};
export const PAPER_M = [10, 20, 30, 40, 50, 100];

/** Seeds the fixed data of both experiments (projection, test pairs, pools). */
export const DATA_SEED = 20250207;
