/**
 * Tian & Shen's MNIST → USPS benchmark with diffusion models: pre-train a (class-conditional)
 * U-Net on n_s MNIST digits, transfer it to the USPS training split (class embedding frozen), and
 * score samples by the exact 1-Wasserstein distance to held-out USPS digits, against the same
 * U-Net trained on USPS alone. `conditional: false` is the unconditional digit-3 variant.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSeed, loadCheckpoint, MODEL_FILE, saveCheckpoint } from '@transfuse/core';
import { loadDigits, prepareDigits, uspsBenchmarkSplit } from '../data/digits.js';
import { subsample } from '../data/split.js';
import { NoiseSchedule } from '../diffusion/schedule.js';
import type { ImageSet } from '../data/image-set.js';
import { sampleImages, trainDiffusion } from '../diffusion/train.js';
import { UNET_PRESETS, type UNet2D, type UNet2DConfig } from '../diffusion/unet.js';
import { savePngGrid } from '../io/png.js';
import { lineChartSvg, type Series } from '../io/plot.js';
import { w1Gpu } from '../metrics/gpu.js';
import { baselineModel, conditionalTransferModel, unconditionalTransferModel } from '../transfer/diffusion.js';
import { baselineFlow, conditionalFlowTransfer, standardBaseConfig, unconditionalFlowTransfer } from '../transfer/flows.js';
import { Flow } from '../flows/flow.js';
import { flowPreset } from '../flows/presets.js';
import { evalBitsPerDim, imageFlowData, sampleFlow, splitFlowData, trainFlow } from '../flows/train.js';
import { writeFileAtomic, writeJson } from '../io/files.js';
import { cell, claimResultsFolder, fmtStat, stat } from './results.js';

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
  /** Also run the second transfer variant ('fresh-head' conditional; 'freeze-deep' / 'fresh' unconditional). */
  variant: boolean;
  /** Model families compared, each with its own transfer and no-transfer runs. */
  families: Family[];
  /** Coupling-flow settings (the 'small' / 'small-cond' presets). */
  flow: { sourceSteps: number; targetSteps: number; batchSize: number; lr: number };
}

export const FAMILIES = ['diffusion', 'flow'] as const;
export type Family = (typeof FAMILIES)[number];

export const MNIST_USPS_PRESETS: Record<'smoke' | 'demo' | 'cpu' | 'paper', MnistUspsPreset> = {
  // Minutes in CI: proves the pipeline end to end, not the science.
  smoke: { size: 16, unet: 'tiny', nsList: [200], seeds: [0], sourceSteps: 12, targetSteps: 12, batchSize: 8, lr: 2e-3, evalN: 40, samplerSteps: 4, variant: true, families: ['diffusion', 'flow'], flow: { sourceSteps: 12, targetSteps: 12, batchSize: 16, lr: 1e-3 } },
  // `npm run demo`: under 15 minutes on a 2-core machine with software WebGPU.
  demo: { size: 16, unet: 'tiny', nsList: [1000, 10000], seeds: [0], sourceSteps: 300, targetSteps: 150, batchSize: 32, lr: 3e-3, evalN: 200, samplerSteps: 10, variant: false, families: ['diffusion'], flow: { sourceSteps: 600, targetSteps: 300, batchSize: 64, lr: 1e-3 } },
  // Hours on a 2-core CPU (about 6 h for the conditional experiment, both families, 2 seeds).
  cpu: { size: 16, unet: 'tiny', nsList: [1000, 5000, 10000, 30000, 60000], seeds: [0, 1], sourceSteps: 1000, targetSteps: 500, batchSize: 32, lr: 3e-3, evalN: 1000, samplerSteps: 25, variant: true, families: ['diffusion', 'flow'], flow: { sourceSteps: 3000, targetSteps: 1500, batchSize: 64, lr: 1e-3 } },
  // A GPU: the paper's scale (all held-out digits, the `small` U-Net).
  paper: { size: 16, unet: 'small', nsList: [1000, 5000, 10000, 30000, 60000], seeds: [0, 1, 2], sourceSteps: 30000, targetSteps: 15000, batchSize: 128, lr: 2e-4, evalN: 2188, samplerSteps: 50, variant: true, families: ['diffusion', 'flow'], flow: { sourceSteps: 20000, targetSteps: 10000, batchSize: 256, lr: 1e-3 } },
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
  /** Flows: bits/dim of all held-out USPS digits (8-bit, dequantized), the likelihood view of the same question. */
  bitsPerDim?: number;
  trainSeconds: number;
  finalLoss: number;
}

export interface FamilyResults {
  baseline: EvalResult[];
  transfer: Record<string, EvalResult[]>;
  variant: Record<string, EvalResult[]>;
  variantName: string | null;
}

export interface MnistUspsResults {
  experiment: string;
  preset: string;
  config: MnistUspsPreset;
  metric: string;
  floor: number;
  families: Partial<Record<Family, FamilyResults>>;
  /** Source images actually used per requested n_s (fewer when the class has fewer, as digit 3 has 6,131). */
  sourceSizes: Record<string, number>;
  splitSeed: number;
}

/** What the runner needs of a generative model, whatever its family. */
interface Generative {
  train(data: ImageSet, steps: number, seed: number, label: string): Promise<{ seconds: number; finalLoss: number }>;
  /** Likelihood models: mean bits/dim of these digits. */
  bitsPerDim?(data: ImageSet): Promise<number>;
  /** n images in [-1, 1] (labels for a conditional model). */
  sample(n: number, labels: Int32Array | undefined, seed: number): Promise<Float32Array>;
  save(dir: string): Promise<void>;
  /** Replaces the weights with those saved in dir. */
  load(dir: string): void;
  dispose(): void;
}

interface FamilyRunner {
  variantName: string;
  baseline(seed: number): Generative;
  /** A fresh source model to pre-train. */
  source(seed: number): Generative;
  transfer(source: Generative, variant: boolean, seed: number): Generative;
}

const SPLIT_SEED = 0;
/** Share of the source digits a source flow holds out for early stopping. */
const SOURCE_VALIDATION_FRACTION = 0.1;

export async function runMnistUsps(o: MnistUspsOptions): Promise<MnistUspsResults> {
  const p = o.preset;
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const name = o.conditional ? 'mnist-usps-conditional' : 'mnist-usps-digit3';
  const classes = o.conditional ? undefined : [3];
  claimResultsFolder(o.out, name, p);
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

  const evaluate = async (model: Generative, seed: number, gridPath: string): Promise<Omit<EvalResult, 'trainSeconds' | 'finalLoss'>> => {
    const samples = await model.sample(held.n, o.conditional ? held.labels! : undefined, seed);
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
    return { w1, perClass, ...(model.bitsPerDim ? { bitsPerDim: await model.bitsPerDim(heldAll) } : {}) };
  };

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
    families: {},
    sourceSizes: {},
    splitSeed: SPLIT_SEED,
  };

  for (const family of p.families) {
    const runner = family === 'diffusion' ? diffusionRunner(p, o.conditional) : flowRunner(p, o.conditional);
    const fr: FamilyResults = { baseline: [], transfer: {}, variant: {}, variantName: p.variant ? runner.variantName : null };
    results.families[family] = fr;
    // One cell: build a model, train it on the target, sample, score; skipped when already done.
    const evalCell = (id: string, seed: number, build: () => Promise<Generative>, steps: number, label: string) =>
      cell(o.out, `${family}-${id}`, async () => {
        const model = await build();
        const t = await model.train(target, steps, deriveSeed(seed, 2), label);
        const e = await evaluate(model, deriveSeed(seed, 3), join(o.out, `samples-${family}-${id}.png`));
        model.dispose();
        return { ...e, trainSeconds: t.seconds, finalLoss: t.finalLoss };
      }, log);
    const targetSteps = family === 'flow' ? p.flow.targetSteps : p.targetSteps;
    for (const seed of p.seeds) {
      fr.baseline.push(await evalCell(`baseline-seed${seed}`, seed, async () => runner.baseline(deriveSeed(seed, 1)), targetSteps, `${family} baseline seed ${seed}`));
      const sizesRun = new Map<number, number>();
      for (const ns of p.nsList) {
        const source = prepareDigits(mnist, null, { size: p.size, classes, n: ns, seed: deriveSeed(seed, ns) });
        results.sourceSizes[ns] = source.n;
        // Every n_s past the class's size takes all of it: one cell stands for them all.
        if (sizesRun.has(source.n)) {
          log(`[${family} n_s=${ns} seed ${seed}] skipped: MNIST has ${source.n} such digits, all used at n_s=${sizesRun.get(source.n)}`);
          continue;
        }
        sizesRun.set(source.n, ns);
        let sourceModel: Generative | null = null;
        // Pre-trained only when a cell that needs it has not run yet, and saved, so that a run
        // stopped between the cells of one n_s loads it instead of pre-training again.
        const getSource = async () => {
          if (!sourceModel) {
            const dir = join(o.out, 'models', `${family}-source-ns${ns}-seed${seed}`);
            sourceModel = runner.source(deriveSeed(seed, 10));
            if (existsSync(join(dir, MODEL_FILE))) {
              sourceModel.load(dir);
              log(`[${family}-source-ns${ns}-seed${seed}] loaded from ${dir}`);
            } else {
              await sourceModel.train(source, family === 'flow' ? p.flow.sourceSteps : p.sourceSteps, deriveSeed(seed, 11), `${family} source n_s=${source.n} seed ${seed}`);
              await sourceModel.save(dir);
            }
          }
          return sourceModel;
        };
        for (const variant of p.variant ? [false, true] : [false]) {
          const id = `${variant ? 'variant' : 'transfer'}-ns${ns}-seed${seed}`;
          const label = `${family} ${variant ? runner.variantName : 'transfer'} n_s=${source.n} seed ${seed}`;
          const r = await evalCell(id, seed, async () => runner.transfer(await getSource(), variant, deriveSeed(seed, 12)), targetSteps, label);
          ((variant ? fr.variant : fr.transfer)[ns] ??= []).push(r);
        }
        (sourceModel as Generative | null)?.dispose();
      }
    }
  }
  writeReport(o.out, results);
  return results;
}

/** U-Net diffusion: DDPM training, DDIM sampling; transfer freezes the class embedding. */
function diffusionRunner(p: MnistUspsPreset, conditional: boolean): FamilyRunner {
  const config: UNet2DConfig = { sampleSize: p.size, ...UNET_PRESETS[p.unet], numClassEmbeds: conditional ? 10 : undefined };
  const schedule = new NoiseSchedule();
  const wrap = (model: UNet2D): Generative => ({
    async train(data, steps, seed, label) {
      model.train();
      const r = await trainDiffusion(model, schedule, data, {
        steps,
        batchSize: p.batchSize,
        lr: p.lr,
        warmup: Math.floor(Math.min(100, steps / 10)),
        finalLrFraction: 0.1,
        seed,
        label,
        logEvery: Math.max(10, Math.floor(steps / 10)),
      });
      return { seconds: r.seconds, finalLoss: r.losses.at(-1)![1] };
    },
    sample(n, labels, seed) {
      model.eval();
      return sampleImages(model, schedule, { n, labels }, { sampler: 'ddim', steps: p.samplerSteps, seed, batchSize: 256 });
    },
    save: (dir) => saveCheckpoint(dir, { model, step: 0, extra: { config } }),
    load: (dir) => void loadCheckpoint(dir, { model }),
    dispose: () => model.dispose(),
    unet: model,
  } as Generative & { unet: UNet2D });
  const unetOf = (g: Generative) => (g as Generative & { unet: UNet2D }).unet;
  return {
    variantName: conditional ? 'fresh-head' : 'freeze-deep',
    baseline: (seed) => wrap(baselineModel(config, seed)),
    source: (seed) => wrap(baselineModel(config, seed)),
    transfer: (src, variant, seed) =>
      wrap(
        conditional
          ? conditionalTransferModel(unetOf(src), variant ? 'fresh-head' : 'finetune', seed)
          : unconditionalTransferModel(unetOf(src), variant ? 'freeze-deep' : 'finetune', seed),
      ),
  };
}

/**
 * Coupling flows (the 'small' presets on dequantised pixels in (0, 1), sampled back to [-1, 1]). Conditional transfer
 * freezes the shared condition embedding; unconditional transfer freezes the learned base (the law
 * of U) and fits the flow g_t, initialised from g_s ('finetune') or afresh ('fresh').
 */
function flowRunner(p: MnistUspsPreset, conditional: boolean): FamilyRunner {
  const config = conditional ? flowPreset('small-cond', { dim: p.size * p.size }) : flowPreset('small', { dim: p.size * p.size, base: 'diagonal' });
  // Source flows stop early on held-out source digits: run to the end, a flow memorises a small
  // n_s (at n_s = 1,000: -3.8 nats/dim on its training digits, +20 on MNIST test, +18,000 on
  // USPS) and fine-tuning spends most of its steps undoing that. Target training runs all steps.
  // Digit subsets keep their labels for reporting; only a conditional flow reads them.
  const asFlowData = (data: ImageSet) => ({ ...imageFlowData(data), labels: conditional ? data.labels : null });
  const wrap = (flow: Flow, earlyStopping = false): Generative => ({
    async train(data, steps, seed, label) {
      flow.train();
      const flowData = asFlowData(data);
      const logEvery = Math.max(10, Math.floor(steps / 10));
      const split = earlyStopping ? splitFlowData(flowData, SOURCE_VALIDATION_FRACTION, deriveSeed(seed, 1)) : null;
      const r = await trainFlow(flow, split?.train ?? flowData, {
        steps, batchSize: p.flow.batchSize, lr: p.flow.lr, seed, label, clipNorm: 1, logEvery,
        ...(split ? { validation: split.validation, validateEvery: Math.max(10, Math.floor(steps / 30)), patience: 5 } : {}),
      });
      return { seconds: r.seconds, finalLoss: r.validation?.best ?? r.losses.at(-1)![1] };
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
  } as Generative & { flow: Flow });
  const flowOf = (g: Generative) => (g as Generative & { flow: Flow }).flow;
  return {
    variantName: conditional ? 'fresh-head' : 'fresh',
    baseline: (seed) => wrap(baselineFlow(conditional ? config : standardBaseConfig(config), seed)),
    source: (seed) => wrap(baselineFlow(config, seed), true),
    transfer: (src, variant, seed) =>
      wrap(
        conditional
          ? conditionalFlowTransfer(flowOf(src), variant ? 'fresh-head' : 'finetune', seed)
          : unconditionalFlowTransfer(flowOf(src), variant ? 'fresh' : 'finetune', seed),
      ),
  };
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
  const c = r.config;
  const lines = [
    `# ${r.experiment} (preset ${r.preset})`,
    '',
    `Metric: ${r.metric}. Lower is better. Real-vs-real floor (USPS train vs held out): ${r.floor.toFixed(4)}.`,
    [
      `Seeds: ${c.seeds.join(', ')}.`,
      c.families.includes('diffusion') ? `Diffusion: U-Net preset ${c.unet}, source ${c.sourceSteps} / target ${c.targetSteps} steps, batch ${c.batchSize}, DDIM ${c.samplerSteps} steps.` : '',
      c.families.includes('flow') ? `Flow: 'small' coupling flow, source ${c.flow.sourceSteps} / target ${c.flow.targetSteps} steps, batch ${c.flow.batchSize}.` : '',
    ].filter(Boolean).join(' '),
    '',
    '| model | n_s | transfer W1 | variant W1 | no-transfer W1 | transfer / no-transfer |',
    '|---|---|---|---|---|---|',
  ];
  const series: Series[] = [];
  for (const [family, fr] of Object.entries(r.families) as [Family, FamilyResults][]) {
    const base = stat(fr.baseline.map((e) => e.w1));
    const nsList = Object.keys(fr.transfer).map(Number).sort((a, b) => a - b);
    for (const ns of nsList) {
      const t = stat(fr.transfer[ns].map((e) => e.w1));
      const v = fr.variant[ns] ? `${fmtStat(stat(fr.variant[ns].map((e) => e.w1)))} (${fr.variantName})` : '-';
      const used = r.sourceSizes[ns] ?? ns;
      lines.push(`| ${family} | ${used < ns ? `${ns} (all ${used})` : ns} | ${fmtStat(t)} | ${v} | ${fmtStat(base)} | ${(t.mean / base.mean).toFixed(3)} |`);
    }
    series.push({ name: `${family}: transfer`, points: nsList.map((x) => ({ x, ...meanSd(fr.transfer[x]) })) });
    series.push({ name: `${family}: no transfer`, points: nsList.map((x) => ({ x, y: base.mean })), dashed: true });
  }
  for (const [family, fr] of Object.entries(r.families) as [Family, FamilyResults][]) {
    if (fr.baseline[0]?.bitsPerDim === undefined) continue;
    const bpd = (es: EvalResult[] | undefined) => (es ? fmtStat(stat(es.map((e) => e.bitsPerDim!))) : '-');
    lines.push('', `Held-out bits/dim, ${family} (all held-out USPS digits; lower is better):`, '', '| n_s | transfer | variant | no transfer |', '|---|---|---|---|');
    for (const ns of Object.keys(fr.transfer).map(Number).sort((a, b) => a - b)) lines.push(`| ${ns} | ${bpd(fr.transfer[ns])} | ${bpd(fr.variant[ns])} | ${bpd(fr.baseline)} |`);
  }
  const first = Object.entries(r.families).find(([, fr]) => fr && Object.keys(fr.baseline[0]?.perClass ?? {}).length);
  if (first) {
    const [family, fr] = first as [Family, FamilyResults];
    lines.push('', `Per-class W1, ${family}, first seed:`, '', '| model | ' + [...Array(10).keys()].join(' | ') + ' |', '|---|' + '---|'.repeat(10));
    const row = (label: string, e: EvalResult) => `| ${label} | ${[...Array(10).keys()].map((k) => e.perClass[k]?.toFixed(3) ?? '-').join(' | ')} |`;
    lines.push(row('no transfer', fr.baseline[0]));
    for (const ns of Object.keys(fr.transfer)) lines.push(row(`transfer n_s=${ns}`, fr.transfer[ns][0]));
  }
  writeFileAtomic(join(out, 'results.md'), `${lines.join('\n')}\n`);
  const xs = [...new Set(series.flatMap((s) => s.points.map((q) => q.x)))];
  // A baseline-only run (no n_s, e.g. a compute-matched control) has no curve against n_s.
  if (xs.length === 0) return;
  series.push({ name: 'USPS floor', points: xs.map((x) => ({ x, y: r.floor })), dashed: true });
  writeFileAtomic(join(out, 'w1.svg'), lineChartSvg(`${r.experiment}: W1 to held-out USPS vs n_s`, 'MNIST source size n_s', 'W1 (pixels in [0,1])', series, { logX: true }));
}

function meanSd(results: EvalResult[]): { y: number; spread: number } {
  const s = stat(results.map((e) => e.w1));
  return { y: s.mean, spread: s.sd };
}
