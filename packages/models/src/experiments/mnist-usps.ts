/**
 * Tian & Shen's MNIST → USPS benchmark with diffusion models: pre-train a (class-conditional)
 * U-Net on n_s MNIST digits, transfer it to the USPS training split (class embedding frozen), and
 * score samples by the exact 1-Wasserstein distance to held-out USPS digits, against the same
 * U-Net trained on USPS alone. `conditional: false` is the unconditional digit-3 variant.
 */
import { join } from 'node:path';
import { deriveSeed, saveCheckpoint } from '@transfuse/core';
import { loadDigits, prepareDigits, uspsBenchmarkSplit } from '../data/digits.js';
import { subsample } from '../data/split.js';
import { NoiseSchedule } from '../diffusion/schedule.js';
import { sampleImages, trainDiffusion, type ImageSet } from '../diffusion/train.js';
import { UNET_PRESETS, type UNet2D, type UNet2DConfig } from '../diffusion/unet.js';
import { savePngGrid } from '../io/png.js';
import { lineChartSvg } from '../io/plot.js';
import { w1Gpu } from '../metrics/gpu.js';
import { baselineModel, conditionalTransferModel, unconditionalTransferModel } from '../transfer/diffusion.js';
import { cell, fmtStat, stat, writeFileAtomic, writeJson } from './results.js';

export interface MnistUspsPreset {
  /** Resolution both data sets are resized to. */
  size: number;
  unet: keyof typeof UNET_PRESETS;
  /** Source sample sizes n_s. */
  nsList: number[];
  seeds: number[];
  sourceSteps: number;
  targetSteps: number;
  batchSize: number;
  lr: number;
  /** Held-out digits used for W1 (all 2,188, or 198 for digit 3, when larger). */
  evalN: number;
  /** DDIM steps for sampling. */
  samplerSteps: number;
  /** Also run the 'fresh-head' (conditional) or 'freeze-deep' (unconditional) transfer variant. */
  variant: boolean;
}

export const MNIST_USPS_PRESETS: Record<'smoke' | 'demo' | 'cpu' | 'paper', MnistUspsPreset> = {
  // Minutes in CI: proves the pipeline end to end, not the science.
  smoke: { size: 16, unet: 'tiny', nsList: [200], seeds: [0], sourceSteps: 12, targetSteps: 12, batchSize: 8, lr: 2e-3, evalN: 40, samplerSteps: 4, variant: true },
  // `npm run demo`: under 15 minutes on a 2-core machine with software WebGPU.
  demo: { size: 16, unet: 'tiny', nsList: [1000, 10000], seeds: [0], sourceSteps: 500, targetSteps: 300, batchSize: 32, lr: 2e-3, evalN: 300, samplerSteps: 20, variant: false },
  // Hours on a 2-core CPU.
  cpu: { size: 16, unet: 'tiny', nsList: [1000, 5000, 10000, 30000, 60000], seeds: [0, 1], sourceSteps: 3000, targetSteps: 1500, batchSize: 64, lr: 2e-3, evalN: 1000, samplerSteps: 25, variant: true },
  // A GPU: the paper's scale (all held-out digits, the `small` U-Net).
  paper: { size: 16, unet: 'small', nsList: [1000, 5000, 10000, 30000, 60000], seeds: [0, 1, 2], sourceSteps: 30000, targetSteps: 15000, batchSize: 128, lr: 2e-4, evalN: 2188, samplerSteps: 50, variant: true },
};

export interface MnistUspsOptions {
  preset: MnistUspsPreset;
  presetName: string;
  conditional: boolean;
  dataDir: string;
  out: string;
  log?: (msg: string) => void;
}

interface EvalResult {
  /** W1 between generated and held-out digits, pixels in [0, 1], images flattened at size x size. */
  w1: number;
  perClass: Record<string, number>;
  trainSeconds: number;
  finalLoss: number;
}

export interface MnistUspsResults {
  experiment: string;
  preset: string;
  config: MnistUspsPreset;
  metric: string;
  floor: number;
  baseline: EvalResult[];
  transfer: Record<string, EvalResult[]>;
  variant: Record<string, EvalResult[]>;
  variantName: string | null;
  splitSeed: number;
}

const SPLIT_SEED = 0;

export async function runMnistUsps(o: MnistUspsOptions): Promise<MnistUspsResults> {
  const p = o.preset;
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const name = o.conditional ? 'mnist-usps-conditional' : 'mnist-usps-digit3';
  const classes = o.conditional ? undefined : [3];
  const d = p.size * p.size;

  // Data: the USPS benchmark split (saved with the results), the held-out evaluation subset, MNIST.
  const split = uspsBenchmarkSplit(o.dataDir, SPLIT_SEED);
  writeJson(join(o.out, 'usps-split.json'), { seed: SPLIT_SEED, train: Array.from(split.train), test: Array.from(split.test) });
  const target = prepareDigits(split.raw, split.train, { size: p.size, classes });
  const heldAll = prepareDigits(split.raw, split.test, { size: p.size, classes });
  const evalN = Math.min(p.evalN, heldAll.n);
  const held = pick(heldAll, subsample(heldAll.n, evalN, deriveSeed(SPLIT_SEED, 7), { stratifyBy: heldAll.labels! }));
  const mnist = loadDigits(o.dataDir, 'mnist', 'train');
  log(`${name} (${o.presetName}): USPS target ${target.n} train / ${heldAll.n} held out (W1 on ${held.n}), resolution ${p.size}x${p.size}`);

  const unetConfig: UNet2DConfig = { sampleSize: p.size, ...UNET_PRESETS[p.unet], numClassEmbeds: o.conditional ? 10 : undefined };
  const schedule = new NoiseSchedule();
  const train = (model: UNet2D, data: ImageSet, steps: number, seed: number, label: string) =>
    trainDiffusion(model, schedule, data, { steps, batchSize: p.batchSize, lr: p.lr, warmup: Math.floor(Math.min(100, steps / 10)), finalLrFraction: 0.1, seed, label, logEvery: Math.max(10, Math.floor(steps / 10)) });

  async function evaluate(model: UNet2D, seed: number, gridPath: string): Promise<Omit<EvalResult, 'trainSeconds' | 'finalLoss'>> {
    model.eval();
    const samples = await sampleImages(model, schedule, { n: held.n, labels: o.conditional ? held.labels! : undefined }, {
      sampler: 'ddim',
      steps: p.samplerSteps,
      seed,
      batchSize: 256,
    });
    savePngGrid(gridPath, gridOf(samples, held.labels!, d, o.conditional), o.conditional ? 100 : Math.min(100, held.n), p.size, p.size, 10);
    const w1 = (await w1Gpu(samples, held.images, held.n, held.n, d)) / 2;
    const perClass: Record<string, number> = {};
    if (o.conditional) {
      for (let c = 0; c < 10; c++) {
        const rows = Int32Array.from(held.labels!.map((l, i) => (l === c ? i : -1)).filter((i) => i >= 0));
        if (rows.length < 2) continue;
        perClass[c] = (await w1Gpu(gather(samples, rows, d), gather(held.images, rows, d), rows.length, rows.length, d)) / 2;
      }
    }
    return { w1, perClass };
  }

  const floor = await cell(o.out, 'floor', async () => {
    // Real vs real: USPS training digits (same class counts) against the held-out ones.
    const real = pick(target, subsample(target.n, held.n, deriveSeed(SPLIT_SEED, 8), { stratifyBy: target.labels! }));
    return (await w1Gpu(real.images, held.images, held.n, held.n, d)) / 2;
  }, log);

  const results: MnistUspsResults = {
    experiment: name,
    preset: o.presetName,
    config: p,
    metric: `exact W1 (Euclidean cost, pixels in [0, 1], ${p.size}x${p.size} images) between ${held.n} generated and ${held.n} held-out USPS digits`,
    floor,
    baseline: [],
    transfer: {},
    variant: {},
    variantName: p.variant ? (o.conditional ? 'fresh-head' : 'freeze-deep') : null,
    splitSeed: SPLIT_SEED,
  };

  for (const seed of p.seeds) {
    results.baseline.push(
      await cell(o.out, `baseline-seed${seed}`, async () => {
        const model = baselineModel(unetConfig, deriveSeed(seed, 1));
        const r = await train(model, target, p.targetSteps, deriveSeed(seed, 2), `baseline seed ${seed}`);
        r.ema?.copyTo(model);
        const e = await evaluate(model, deriveSeed(seed, 3), join(o.out, `samples-baseline-seed${seed}.png`));
        model.dispose();
        return { ...e, trainSeconds: r.seconds, finalLoss: r.losses.at(-1)![1] };
      }, log),
    );
    for (const ns of p.nsList) {
      const source = prepareDigits(mnist, null, { size: p.size, classes, n: ns, seed: deriveSeed(seed, ns) });
      let sourceModel: UNet2D | null = null;
      const getSource = async () => {
        if (!sourceModel) {
          sourceModel = baselineModel(unetConfig, deriveSeed(seed, 10));
          await train(sourceModel, source, p.sourceSteps, deriveSeed(seed, 11), `source n_s=${source.n} seed ${seed}`);
          await saveCheckpoint(join(o.out, 'models', `source-ns${ns}-seed${seed}`), { model: sourceModel, step: p.sourceSteps, extra: { config: unetConfig, ns: source.n } });
        }
        return sourceModel;
      };
      const transferCell = async (mode: string) => {
        const src = await getSource();
        const model = o.conditional
          ? conditionalTransferModel(src, mode === 'variant' ? 'fresh-head' : 'finetune', deriveSeed(seed, 12))
          : unconditionalTransferModel(src, mode === 'variant' ? 'freeze-deep' : 'finetune', deriveSeed(seed, 12));
        const r = await train(model, target, p.targetSteps, deriveSeed(seed, 2), `${mode} n_s=${source.n} seed ${seed}`);
        const e = await evaluate(model, deriveSeed(seed, 3), join(o.out, `samples-${mode}-ns${ns}-seed${seed}.png`));
        model.dispose();
        return { ...e, trainSeconds: r.seconds, finalLoss: r.losses.at(-1)![1] };
      };
      (results.transfer[ns] ??= []).push(await cell(o.out, `transfer-ns${ns}-seed${seed}`, () => transferCell('transfer'), log));
      if (p.variant) (results.variant[ns] ??= []).push(await cell(o.out, `variant-ns${ns}-seed${seed}`, () => transferCell('variant'), log));
      (sourceModel as UNet2D | null)?.dispose();
    }
  }
  writeReport(o.out, results);
  return results;
}

function pick(set: ImageSet & { indices?: Int32Array }, rows: Int32Array): ImageSet {
  const d = set.channels * set.height * set.width;
  return { ...set, images: gather(set.images, rows, d), labels: set.labels ? Int32Array.from(rows, (r) => set.labels![r]) : null, n: rows.length };
}

function gather(values: Float32Array, rows: Int32Array, d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => out.set(values.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

/** Up to 10 samples per class, one row per class (or the first 100 samples). */
function gridOf(samples: Float32Array, labels: Int32Array, d: number, conditional: boolean): Float32Array {
  if (!conditional) return samples.subarray(0, Math.min(100, labels.length) * d);
  const grid = new Float32Array(100 * d).fill(-1);
  const filled = new Array<number>(10).fill(0);
  labels.forEach((c, i) => {
    if (filled[c] < 10) grid.set(samples.subarray(i * d, (i + 1) * d), (c * 10 + filled[c]++) * d);
  });
  return grid;
}

/** results.json, results.md (table) and w1.svg (error vs n_s) in the results folder. */
export function writeReport(out: string, r: MnistUspsResults): void {
  writeJson(join(out, 'results.json'), r);
  const base = stat(r.baseline.map((e) => e.w1));
  const lines = [
    `# ${r.experiment} (preset ${r.preset})`,
    '',
    `Metric: ${r.metric}. Lower is better. Real-vs-real floor (USPS train vs held out): ${r.floor.toFixed(4)}.`,
    `Seeds: ${r.config.seeds.join(', ')}; U-Net preset ${r.config.unet}; source ${r.config.sourceSteps} steps, target ${r.config.targetSteps} steps, batch ${r.config.batchSize}; DDIM ${r.config.samplerSteps} steps.`,
    '',
    `| n_s | transfer W1 |${r.variantName ? ` ${r.variantName} W1 |` : ''} no-transfer W1 | transfer / no-transfer |`,
    `|---|---|${r.variantName ? '---|' : ''}---|---|`,
  ];
  for (const ns of Object.keys(r.transfer).map(Number).sort((a, b) => a - b)) {
    const t = stat(r.transfer[ns].map((e) => e.w1));
    const v = r.variantName && r.variant[ns] ? ` ${fmtStat(stat(r.variant[ns].map((e) => e.w1)))} |` : r.variantName ? ' |' : '';
    lines.push(`| ${ns} | ${fmtStat(t)} |${v} ${fmtStat(base)} | ${(t.mean / base.mean).toFixed(3)} |`);
  }
  if (r.baseline[0] && Object.keys(r.baseline[0].perClass).length) {
    lines.push('', 'Per-class W1 (first seed):', '', '| model | ' + [...Array(10).keys()].join(' | ') + ' |', '|---|' + '---|'.repeat(10));
    const row = (name: string, e: EvalResult) => `| ${name} | ${[...Array(10).keys()].map((c) => e.perClass[c]?.toFixed(3) ?? '-').join(' | ')} |`;
    lines.push(row('no transfer', r.baseline[0]));
    for (const ns of Object.keys(r.transfer)) lines.push(row(`transfer n_s=${ns}`, r.transfer[ns][0]));
  }
  writeFileAtomic(join(out, 'results.md'), `${lines.join('\n')}\n`);
  const nsList = Object.keys(r.transfer).map(Number);
  const flat = (y: number) => nsList.map((x) => ({ x, y }));
  const series = [
    { name: 'transfer', points: nsList.map((x) => ({ x, y: stat(r.transfer[x].map((e) => e.w1)).mean, spread: stat(r.transfer[x].map((e) => e.w1)).sd })) },
    { name: 'no transfer', points: flat(base.mean), dashed: true },
    { name: 'USPS floor', points: flat(r.floor), dashed: true },
  ];
  if (r.variantName) series.splice(1, 0, { name: r.variantName, points: nsList.filter((x) => r.variant[x]).map((x) => ({ x, y: stat(r.variant[x].map((e) => e.w1)).mean, spread: 0 })) });
  writeFileAtomic(join(out, 'w1.svg'), lineChartSvg(`${r.experiment}: W1 to held-out USPS vs n_s`, 'MNIST source size n_s', 'W1 (pixels in [0,1])', series, { logX: true }));
}
