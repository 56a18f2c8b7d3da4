/**
 * The transfer experiment on any source and target image sets (Node-only: it writes a results
 * folder). For each model family, seed, target size n_t and source size n_s it trains a source
 * model, transfers it, and compares it with a baseline trained on the target alone and a
 * compute-matched baseline given the transfer arm's total steps. Every training run stops on its
 * own held-out validation split, up to a cap, and records the steps and images it used. Cells
 * are resumable; the folder's config.json refuses other settings.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSeed } from '@transfuse/core';
import { MODEL_FILE } from '@transfuse/core/node';
import type { DigitImages } from '../data/mnist.js';
import { createRng, shuffleInPlace } from '../data/prng.js';
import { resizeImages, toSigned } from '../data/preprocess.js';
import { gatherRows } from '../data/batches.js';
import { stratifiedSplit, subsample } from '../data/split.js';
import type { ImageSet } from '../data/image-set.js';
import type { UNET_PRESETS } from '../diffusion/unet.js';
import { savePngGrid } from '../io/png_file.js';
import { classFidelity, trainClassifier, type DigitClassifier } from '../metrics/class-fidelity.js';
import { imageW1, labelMatchedRows, perClassW1, rowsByClass } from '../metrics/image-w1.js';
import { diffusionFamily, flowFamily, type Family, type FamilyRunner, type Generative, type TrainingBudget, type TrainRecord } from './families.js';
import { readJson, writeJson } from '../io/files.js';
import { cell, claimResultsFolder } from './results.js';
import { summarize, type Arm, type CellResult } from './transfer-summary.js';
import { writeTransferReport } from './transfer-report.js';

/** Results written under this protocol say so; folders of the fixed-step protocol are refused. */
export const PROTOCOL_VERSION = 2;

export interface FamilyProtocol {
  arms: Arm[];
  source: TrainingBudget;
  target: TrainingBudget;
}

export interface TransferProtocol {
  /** Both sets are resized to size x size. */
  size: number;
  conditional: boolean;
  seeds: number[];
  /** Source sizes n_s (seeded stratified subsets; larger than the source takes all of it). */
  nsList: number[];
  /** Target training sizes n_t (seeded stratified subsets of the training split), or 'all'. */
  ntList: (number | 'all')[];
  /** Held-out target images scored per cell (a stratified subset of the held-out split). */
  evalN: number;
  /** Share of each training set held out for its validation loss (source and target). */
  validationFraction: { source: number; target: number };
  /** At most this many validation images per run (a stratified subset), which bounds the cost of each measurement. */
  maxValidation: number;
  diffusion?: FamilyProtocol & { unet: keyof typeof UNET_PRESETS; samplerSteps: number };
  flow?: FamilyProtocol;
  /** The class-fidelity classifier (conditional experiments), trained on the target training split. */
  classifier: { steps: number; batchSize: number; lr: number } | null;
}

export interface TransferExperimentOptions {
  /** Experiment name, written into config.json and the report. */
  name: string;
  presetName: string;
  protocol: TransferProtocol;
  /** Images in [0, 1] with labels (class ids shared by source and target). */
  source: DigitImages;
  target: DigitImages;
  /** Held-out target images; without them a seeded stratified 30% of `target` is held out. */
  targetTest?: DigitImages;
  /** Keep only these classes of both sets (e.g. [3] for the digit-3 task). */
  classes?: number[];
  splitSeed?: number;
  /** Names of the data, for the report. */
  sourceName?: string;
  targetName?: string;
  out: string;
  log?: (msg: string) => void;
}

export interface TransferResults {
  experiment: string;
  preset: string;
  protocolVersion: number;
  config: TransferProtocol;
  sourceName: string;
  targetName: string;
  metric: string;
  /** Label-matched real-vs-real floor: target training images with the evaluation labels. */
  floor: { w1: number; perClass: Record<string, number> };
  classifier: { heldOutAccuracy: number; heldOut: number } | null;
  targetTrain: number;
  heldOut: number;
  evalN: number;
  sourceSizes: Record<string, number>;
  cells: CellResult[];
  summary: ReturnType<typeof summarize>;
}

const SPLIT_SEED = 0;

/** Images in [0, 1] of the wanted classes -> an ImageSet in [-1, 1] at size x size. */
function toImageSet(raw: DigitImages, rows: Int32Array, size: number): ImageSet {
  let images = gatherRows(raw.images, raw.height * raw.width, rows);
  if (raw.height !== size || raw.width !== size) images = resizeImages(images, rows.length, raw.height, raw.width, size, size, size < raw.height ? 'area' : 'bilinear');
  return { images: toSigned(images), labels: Int32Array.from(rows, (r) => raw.labels[r]), n: rows.length, channels: 1, height: size, width: size };
}

function pick(set: ImageSet, rows: Int32Array): ImageSet {
  const d = set.channels * set.height * set.width;
  return { ...set, images: gatherRows(set.images, d, rows), labels: set.labels ? Int32Array.from(rows, (r) => set.labels![r]) : null, n: rows.length };
}

function allRows(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

function classRows(raw: DigitImages, classes: number[] | undefined): Int32Array {
  if (!classes) return allRows(raw.n);
  const wanted = new Set(classes);
  return allRows(raw.n).filter((i) => wanted.has(raw.labels[i]));
}

/** A seeded stratified split of a set into training rows and validation rows (each at least 1). */
function trainValidation(set: ImageSet, fraction: number, max: number, seed: number): { train: ImageSet; validation: ImageSet } {
  if (set.n < 2) throw new Error(`a training set of ${set.n} image(s) cannot hold out a validation split; use a larger n`);
  const s = stratifiedSplit(set.labels!, fraction, seed);
  if (!s.train.length) return { train: pick(set, s.test.subarray(1)), validation: pick(set, s.test.subarray(0, 1)) };
  const rows = s.test.length > max ? subsample(s.test, max, seed, { stratifyBy: set.labels! }) : s.test;
  return { train: pick(set, s.train), validation: pick(set, rows) };
}

/** Up to 10 samples of each of up to 10 classes, one row per class (or the first 100 samples). */
function gridOf(samples: Float32Array, labels: Int32Array, d: number, conditional: boolean): { images: Float32Array; n: number } {
  if (!conditional) return { images: samples.subarray(0, Math.min(100, labels.length) * d), n: Math.min(100, labels.length) };
  const byClass = [...rowsByClass(labels)].slice(0, 10);
  const grid = new Float32Array(byClass.length * 10 * d).fill(-1);
  byClass.forEach(([, rows], k) => rows.subarray(0, 10).forEach((r, j) => grid.set(samples.subarray(r * d, (r + 1) * d), (k * 10 + j) * d)));
  return { images: grid, n: byClass.length * 10 };
}

function checkProtocol(p: TransferProtocol): void {
  const families = [p.diffusion && 'diffusion', p.flow && 'flow'].filter(Boolean);
  if (!families.length) throw new Error('the protocol has no model family (diffusion and/or flow)');
  if (!p.seeds.length) throw new Error('the protocol has no seeds');
  for (const ns of p.nsList) if (!Number.isInteger(ns) || ns < 2) throw new Error(`n_s must be whole numbers of at least 2, got ${ns}`);
  for (const nt of p.ntList) if (nt !== 'all' && (!Number.isInteger(nt) || nt < 2)) throw new Error(`n_t must be whole numbers of at least 2 or 'all', got ${nt}`);
  for (const [f, fp] of [['diffusion', p.diffusion], ['flow', p.flow]] as const) {
    if (!fp) continue;
    if (!fp.arms.length) throw new Error(`${f}: no arms`);
    if (fp.arms.includes('matched') && !fp.arms.includes('transfer') && !fp.arms.includes('variant')) throw new Error(`${f}: the 'matched' arm needs a transfer arm whose steps it matches`);
    for (const b of [fp.source, fp.target]) {
      for (const k of ['cap', 'batchSize', 'validateEvery', 'patience'] as const) if (!(b[k] >= 1)) throw new Error(`${f}: budget ${k} must be at least 1, got ${b[k]}`);
    }
  }
}

export async function runTransferExperiment(o: TransferExperimentOptions): Promise<TransferResults> {
  const p = o.protocol;
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  checkProtocol(p);
  const configPath = join(o.out, 'config.json');
  if (existsSync(configPath) && readJson<{ config?: { protocolVersion?: number } }>(configPath).config?.protocolVersion !== PROTOCOL_VERSION) {
    throw new Error(
      `${o.out} holds results of the fixed-step protocol or of another experiment (${configPath} has no protocol version ${PROTOCOL_VERSION}); ` +
        'its cells were trained and scored differently and cannot be mixed with these. Pass another --out.',
    );
  }
  claimResultsFolder(o.out, o.name, { protocolVersion: PROTOCOL_VERSION, ...p });
  const splitSeed = o.splitSeed ?? SPLIT_SEED;
  const d = p.size * p.size;

  // Target: the training split (n_t subsets and the validation splits come from it) and the held-out split.
  const targetRows = classRows(o.target, o.classes);
  let trainRows: Int32Array;
  let heldAll: ImageSet;
  if (o.targetTest) {
    trainRows = targetRows;
    heldAll = toImageSet(o.targetTest, classRows(o.targetTest, o.classes), p.size);
  } else {
    const s = stratifiedSplit(Int32Array.from(targetRows, (r) => o.target.labels[r]), 0.3, splitSeed);
    trainRows = Int32Array.from(s.train, (i) => targetRows[i]);
    heldAll = toImageSet(o.target, Int32Array.from(s.test, (i) => targetRows[i]), p.size);
    writeJson(join(o.out, 'target-split.json'), { seed: splitSeed, train: Array.from(trainRows), test: Array.from(s.test, (i) => targetRows[i]) });
  }
  const targetTrain = toImageSet(o.target, trainRows, p.size);
  if (heldAll.n < 2 || targetTrain.n < 2) throw new Error(`the target has ${targetTrain.n} training and ${heldAll.n} held-out images of the wanted classes; both need at least 2`);
  const evalN = Math.min(p.evalN, heldAll.n);
  const held = pick(heldAll, subsample(heldAll.n, evalN, deriveSeed(splitSeed, 7), { stratifyBy: heldAll.labels! }));
  const sourceRows = classRows(o.source, o.classes);
  if (sourceRows.length < 2) throw new Error(`the source has ${sourceRows.length} images of the wanted classes`);
  const numClasses = Math.max(...o.source.labels, ...o.target.labels) + 1;
  const sourceName = o.sourceName ?? 'source';
  const targetName = o.targetName ?? 'target';
  log(`${o.name} (${o.presetName}): ${targetName} ${targetTrain.n} train / ${heldAll.n} held out (W1 on ${held.n}), ${sourceName} ${sourceRows.length}, ${p.size}x${p.size}`);
  const pixels = { dim: d, pixelRange: [-1, 1] as const };

  const floor = await cell(o.out, 'floor', async () => {
    // Real vs real with the same labels: target training images against the held-out ones.
    const rows = labelMatchedRows(targetTrain.labels!, held.labels!, (r) => shuffleInPlace(r, createRng(deriveSeed(splitSeed, 8))));
    const real = pick(targetTrain, rows);
    return { w1: await imageW1(real.images, held.images, pixels), perClass: p.conditional ? await perClassW1(real.images, real.labels!, held.images, held.labels!, pixels) : {} };
  }, log);

  let classifier: DigitClassifier | null = null;
  if (p.conditional && p.classifier) {
    classifier = await trainClassifier(targetTrain, { ...p.classifier, seed: deriveSeed(splitSeed, 9) });
    log(`class-fidelity classifier: ${(100 * classifier.heldOutAccuracy).toFixed(1)}% on ${classifier.heldOut} held-out real ${targetName} images`);
  }

  const evaluate = async (model: Generative, seed: number, gridPath: string) => {
    const samples = await model.sample(held.n, p.conditional ? held.labels! : undefined, seed);
    const grid = gridOf(samples, held.labels!, d, p.conditional);
    savePngGrid(gridPath, grid.images, grid.n, p.size, p.size, 10);
    const fidelity = classifier ? await classFidelity(classifier, samples, held.labels!) : null;
    return {
      w1: await imageW1(samples, held.images, pixels),
      perClass: p.conditional ? await perClassW1(samples, held.labels!, held.images, held.labels!, pixels) : {},
      ...(fidelity ? { classAccuracy: fidelity.accuracy, perClassAccuracy: fidelity.perClass } : {}),
      ...(model.bitsPerDim ? { bitsPerDim: await model.bitsPerDim(heldAll) } : {}),
    };
  };

  const results: TransferResults = {
    experiment: o.name,
    preset: o.presetName,
    protocolVersion: PROTOCOL_VERSION,
    config: p,
    sourceName,
    targetName,
    metric: `exact W1 (Euclidean cost, pixels on the [0, 1] scale, ${p.size}x${p.size} images) between ${held.n} generated and ${held.n} held-out ${targetName} images`,
    floor,
    classifier: classifier ? { heldOutAccuracy: classifier.heldOutAccuracy, heldOut: classifier.heldOut } : null,
    targetTrain: targetTrain.n,
    heldOut: heldAll.n,
    evalN: held.n,
    sourceSizes: {},
    cells: [],
    summary: { rows: [], trends: [] },
  };

  const shape = { size: p.size, conditional: p.conditional, numClasses };
  const families: [Family, FamilyProtocol, FamilyRunner][] = [];
  if (p.diffusion) families.push(['diffusion', p.diffusion, diffusionFamily(shape, p.diffusion.unet, p.diffusion.samplerSteps)]);
  if (p.flow) families.push(['flow', p.flow, flowFamily(shape)]);
  try {
    for (const [family, fp, runner] of families) {
      for (const seed of p.seeds) {
        const sources = new Map<number, { model: Generative; record: TrainRecord; used: number }>();
        // Source models are pre-trained once per (n_s, seed) and saved, whatever n_t.
        const getSource = async (ns: number) => {
          const have = sources.get(ns);
          if (have) return have;
          const subset = subsample(sourceRows, Math.min(ns, sourceRows.length), deriveSeed(seed, ns), { stratifyBy: o.source.labels });
          const set = toImageSet(o.source, subset, p.size);
          const id = `${family}-source-ns${ns}-seed${seed}`;
          const dir = join(o.out, 'models', id);
          const model = runner.source(deriveSeed(seed, 10));
          let trained = false;
          const record = await cell(o.out, id, async () => {
            const split = trainValidation(set, p.validationFraction.source, p.maxValidation, deriveSeed(seed, 13));
            const r = await model.train(split.train, split.validation, fp.source, { seed: deriveSeed(seed, 11), label: `${family} source n_s=${set.n} seed ${seed}`, stopEarly: true });
            await model.save(dir);
            trained = true;
            return r;
          }, log);
          if (!trained) {
            if (!existsSync(join(dir, MODEL_FILE))) throw new Error(`${dir}: the source model of cell ${id} is missing; delete cells/${id}.json to train it again`);
            model.load(dir);
            log(`[${id}] loaded from ${dir}`);
          }
          const entry = { model, record, used: set.n };
          sources.set(ns, entry);
          return entry;
        };
        for (const nt of p.ntList) {
          const subset = nt === 'all' || nt >= targetTrain.n ? allRows(targetTrain.n) : subsample(targetTrain.n, nt, deriveSeed(seed, 20), { stratifyBy: targetTrain.labels! });
          const { train, validation } = trainValidation(pick(targetTrain, subset), p.validationFraction.target, p.maxValidation, deriveSeed(seed, 21));
          const ntKey = String(nt);
          const base = { family, seed, nt: ntKey, ntUsed: subset.length };
          // One cell: build, train on the target split, sample, score; skipped when done.
          const targetCell = (arm: Arm, ns: number | null, build: () => Promise<Generative>, budget: TrainingBudget, stopEarly: boolean, sourceOf?: () => Promise<TrainRecord>) => {
            const id = `${family}-${arm}-nt${ntKey}${ns === null ? '' : `-ns${ns}`}-seed${seed}`;
            return cell(o.out, `${id}`, async (): Promise<CellResult> => {
              const source = sourceOf ? await sourceOf() : undefined;
              const model = await build();
              const label = `${family} ${arm === 'variant' ? runner.variantName : arm} n_t=${subset.length}${ns === null ? '' : ` n_s=${ns}`} seed ${seed}`;
              const target = await model.train(train, validation, budget, { seed: deriveSeed(seed, 2), label, stopEarly });
              const e = await evaluate(model, deriveSeed(seed, 3), join(o.out, 'samples', `${id}.png`));
              model.dispose();
              const totalSteps = target.steps + (source?.steps ?? 0);
              return { ...base, arm, ns, ...e, target, ...(source ? { source } : {}), totalSteps, totalImages: target.images + (source?.images ?? 0) };
            }, log);
          };
          if (fp.arms.includes('baseline')) results.cells.push(await targetCell('baseline', null, async () => runner.baseline(deriveSeed(seed, 1)), fp.target, true));
          const usedSizes = new Map<number, number>();
          for (const ns of p.nsList) {
            const used = Math.min(ns, sourceRows.length);
            results.sourceSizes[ns] = used;
            // Every n_s past the source's size takes all of it: one cell stands for them all.
            if (usedSizes.has(used)) {
              log(`[${family} n_s=${ns} seed ${seed}] skipped: the source has ${used} such images, all used at n_s=${usedSizes.get(used)}`);
              continue;
            }
            usedSizes.set(used, ns);
            let transferSteps: number | null = null;
            for (const arm of ['transfer', 'variant'] as const) {
              if (!fp.arms.includes(arm)) continue;
              const r = await targetCell(arm, ns, async () => runner.transfer((await getSource(ns)).model, arm === 'variant', deriveSeed(seed, 12)), fp.target, true, async () => (await getSource(ns)).record);
              results.cells.push(r);
              transferSteps ??= r.totalSteps;
            }
            if (fp.arms.includes('matched')) {
              // The baseline given the transfer arm's total steps (source + target), run to the end; the best validation weights are kept.
              const budget = { ...fp.target, cap: transferSteps! };
              results.cells.push(await targetCell('matched', ns, async () => runner.baseline(deriveSeed(seed, 1)), budget, false));
            }
          }
        }
        for (const s of sources.values()) s.model.dispose();
      }
    }
  } finally {
    classifier?.dispose();
  }
  results.summary = summarize(results.cells);
  writeTransferReport(o.out, results);
  return results;
}
