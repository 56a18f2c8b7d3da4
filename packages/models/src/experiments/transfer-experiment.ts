/**
 * The transfer experiment on any source and target image sets (Node-only: it writes a results
 * folder). For each model family, seed, target size n_t and source size n_s it trains a source
 * model, transfers it, and compares it with a baseline trained on the target alone and a
 * compute-matched baseline given the transfer arm's total steps. Every training run stops on its
 * own held-out validation split, up to a cap, and records the steps and images it used. The
 * experiment is a plan of cells (transfer-plan.ts), each run by id and kept as cells/ID.json (a
 * finished cell is skipped, a cell's training resumes from its checkpoints), and a report written
 * from the folder; the folder's config.json refuses other settings, while slices of the grid share
 * it (transfer-folder.ts).
 */
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
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
import { diffusionFamily, flowFamily, type CellTrainOptions, type Family, type FamilyRunner, type Generative, type TrainingBudget, type TrainRecord } from './families.js';
import { readJson, writeFileAtomic, writeJson } from '../io/files.js';
import { cell } from './results.js';
import { checkSourcesFolder, claimTransferFolder, transferSettings } from './transfer-folder.js';
import { planTransferCells, scoresClassFidelity, type PlannedCell, type SourceCell, type TargetCell, type TransferPlan } from './transfer-plan.js';
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
  /**
   * A results folder of the same experiment whose source cells (and models) this run takes
   * instead of training them again: its settings must match except the target budget and arms
   * (checked); the sources it lacks are trained here.
   */
  sourcesFrom?: string;
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
      if (b.validateEpochs !== undefined && !(b.validateEpochs > 0)) throw new Error(`${f}: budget validateEpochs must be positive, got ${b.validateEpochs}`);
      if (b.emaDecay !== undefined && !(b.emaDecay > 0 && b.emaDecay < 1)) throw new Error(`${f}: budget emaDecay must be between 0 and 1 (exclusive), got ${b.emaDecay}`);
      if (b.actnormPrior !== undefined && f !== 'flow') throw new Error(`${f}: budget actnormPrior sets flows' ActNorm layers; the ${f} family has none`);
      if (b.actnormPrior !== undefined && !(b.actnormPrior >= 0 && Number.isFinite(b.actnormPrior))) throw new Error(`${f}: budget actnormPrior must be a number >= 0, got ${b.actnormPrior}`);
    }
  }
}


/** What a cell needs of the source model it transfers: the weights and how they were trained. */
interface SourceModel {
  model: Generative;
  record: TrainRecord;
}

/**
 * One transfer experiment on one results folder: its plan, its data, and the cells run one at a
 * time by id (`runCell`; a finished cell is skipped), then `report` writes the report from the
 * cells on disk. The single-process runner and the queue's workers both drive it.
 */
export class TransferExperiment {
  readonly plan: TransferPlan;
  readonly out: string;
  private readonly o: TransferExperimentOptions;
  private readonly p: TransferProtocol;
  private readonly log: (msg: string) => void;
  private readonly targetTrain: ImageSet;
  private readonly heldAll: ImageSet;
  private readonly held: ImageSet;
  private readonly sourceRows: Int32Array;
  private readonly families = new Map<Family, { fp: FamilyProtocol; runner: FamilyRunner }>();
  private readonly splitSeed: number;
  private classifierRun: Promise<DigitClassifier> | null = null;
  /** Whether cells score class fidelity (scoresClassFidelity), and the images its classifier learns. */
  private readonly fidelity: boolean;
  private readonly classifierTrain: ImageSet;
  /** Source models in memory, oldest first; at most one per distinct n_s. */
  private readonly sources = new Map<string, SourceModel>();

  /** Checks the protocol and the folder's config (it refuses other settings), and prepares the data. */
  constructor(o: TransferExperimentOptions) {
    const p = o.protocol;
    this.o = o;
    this.p = p;
    this.out = o.out;
    this.log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
    checkProtocol(p);
    const configPath = join(o.out, 'config.json');
    if (existsSync(configPath) && readJson<{ config?: { protocolVersion?: number } }>(configPath).config?.protocolVersion !== PROTOCOL_VERSION) {
      throw new Error(
        `${o.out} holds results of the fixed-step protocol or of another experiment (${configPath} has no protocol version ${PROTOCOL_VERSION}); ` +
          'its cells were trained and scored differently and cannot be mixed with these. Pass another --out.',
      );
    }
    const splitSeed = (this.splitSeed = o.splitSeed ?? SPLIT_SEED);
    // The default split seed is not written, as in folders from before it was recorded.
    const settings = transferSettings(PROTOCOL_VERSION, p, { classes: o.classes, splitSeed: splitSeed === SPLIT_SEED ? undefined : splitSeed });
    if (o.sourcesFrom) checkSourcesFolder(o.sourcesFrom, o.name, settings);
    claimTransferFolder(o.out, o.name, settings);

    // Target: the training split (n_t subsets and the validation splits come from it) and the held-out split.
    const targetRows = classRows(o.target, o.classes);
    let trainRows: Int32Array;
    let heldRows = new Int32Array(0);
    if (o.targetTest) {
      trainRows = targetRows;
      this.heldAll = toImageSet(o.targetTest, classRows(o.targetTest, o.classes), p.size);
    } else {
      const s = stratifiedSplit(Int32Array.from(targetRows, (r) => o.target.labels[r]), 0.3, splitSeed);
      trainRows = Int32Array.from(s.train, (i) => targetRows[i]);
      heldRows = Int32Array.from(s.test, (i) => targetRows[i]);
      this.heldAll = toImageSet(o.target, heldRows, p.size);
      writeJson(join(o.out, 'target-split.json'), { seed: splitSeed, train: Array.from(trainRows), test: Array.from(heldRows) });
    }
    const heldAll = this.heldAll;
    const targetTrain = (this.targetTrain = toImageSet(o.target, trainRows, p.size));
    this.fidelity = scoresClassFidelity(p, o.classes);
    // Unconditional (one kept class): its classifier tells it from every other class of the target's training images (never the held-out ones).
    const held = new Set(heldRows);
    this.classifierTrain = !p.conditional && this.fidelity ? toImageSet(o.target, allRows(o.target.n).filter((r) => !held.has(r)), p.size) : targetTrain;
    if (heldAll.n < 2 || targetTrain.n < 2) throw new Error(`the target has ${targetTrain.n} training and ${heldAll.n} held-out images of the wanted classes; both need at least 2`);
    const evalN = Math.min(p.evalN, heldAll.n);
    this.held = pick(heldAll, subsample(heldAll.n, evalN, deriveSeed(splitSeed, 7), { stratifyBy: heldAll.labels! }));
    this.sourceRows = classRows(o.source, o.classes);
    if (this.sourceRows.length < 2) throw new Error(`the source has ${this.sourceRows.length} images of the wanted classes`);
    const numClasses = Math.max(...o.source.labels, ...o.target.labels) + 1;
    this.log(`${o.name} (${o.presetName}): ${this.targetName} ${targetTrain.n} train / ${heldAll.n} held out (W1 on ${this.held.n}), ${this.sourceName} ${this.sourceRows.length}, ${p.size}x${p.size}`);
    const shape = { size: p.size, conditional: p.conditional, numClasses };
    if (p.diffusion) this.families.set('diffusion', { fp: p.diffusion, runner: diffusionFamily(shape, p.diffusion.unet, p.diffusion.samplerSteps) });
    if (p.flow) this.families.set('flow', { fp: p.flow, runner: flowFamily(shape) });
    this.plan = planTransferCells(p, this.sourceRows.length, o.classes);
    // Every n_s past the source's size takes all of it: one cell stands for them all.
    for (const s of this.plan.skipped) this.log(`[n_s=${s.ns}] skipped: the source has ${s.used} such images, all used at n_s=${s.sameAs}`);
  }

  private get sourceName(): string {
    return this.o.sourceName ?? 'source';
  }

  private get targetName(): string {
    return this.o.targetName ?? 'target';
  }

  private get pixels() {
    return { dim: this.p.size * this.p.size, pixelRange: [-1, 1] as const };
  }

  /** Whether the cell's result file exists. */
  isDone(id: string): boolean {
    return existsSync(join(this.out, 'cells', `${id}.json`));
  }

  /** Runs one cell of the plan unless it is done (a missing source model is trained or loaded on the way). */
  async runCell(id: string): Promise<void> {
    const c = this.plan.cells.find((x) => x.id === id);
    if (!c) throw new Error(`${this.o.name}: no cell '${id}' in this experiment's plan`);
    if (c.kind === 'floor') await this.cell(c.id, () => this.floor());
    else if (c.kind === 'classifier') await this.cell(c.id, async () => ({ heldOutAccuracy: (await this.classifier()).heldOutAccuracy, heldOut: (await this.classifier()).heldOut }));
    else if (c.kind === 'source') {
      if (this.isDone(c.id)) this.log(`[${c.id}] done earlier: ${join(this.out, 'cells', `${c.id}.json`)}`);
      else if (!this.adoptSource(c.id)) await this.source(c);
    } else await this.targetCell(c);
  }

  /** Copies a finished source cell and its model from the sourcesFrom folder, if it has them; the cell file comes last, so a crash leaves it undone. */
  private adoptSource(id: string): boolean {
    const from = this.o.sourcesFrom;
    if (!from || !existsSync(join(from, 'cells', `${id}.json`)) || !existsSync(join(from, 'models', id, MODEL_FILE))) return false;
    cpSync(join(from, 'models', id), join(this.out, 'models', id), { recursive: true });
    writeFileAtomic(join(this.out, 'cells', `${id}.json`), readFileSync(join(from, 'cells', `${id}.json`)));
    this.log(`[${id}] copied from ${from}`);
    return true;
  }

  /** Runs `compute` unless the cell is done, then drops its training checkpoints. */
  private async cell<T>(id: string, compute: () => Promise<T>): Promise<T> {
    const value = await cell(this.out, id, compute, this.log);
    rmSync(this.checkpointDir(id), { recursive: true, force: true });
    return value;
  }

  private checkpointDir(id: string): string {
    return join(this.out, 'checkpoints', id);
  }

  /** Trains a model with checkpoints in checkpoints/ID, so a killed or stopped run resumes from the newest. */
  private train(model: Generative, id: string, data: { train: ImageSet; validation: ImageSet }, budget: TrainingBudget, o: Omit<CellTrainOptions, 'checkpointDir'>): Promise<TrainRecord> {
    return model.train(data.train, data.validation, budget, { ...o, checkpointDir: this.checkpointDir(id) });
  }

  private async floor(): Promise<TransferResults['floor']> {
    // Real vs real with the same labels: target training images against the held-out ones.
    const { targetTrain, held, pixels, p } = this;
    const rows = labelMatchedRows(targetTrain.labels!, held.labels!, (r) => shuffleInPlace(r, createRng(deriveSeed(this.splitSeed, 8))));
    const real = pick(targetTrain, rows);
    return { w1: await imageW1(real.images, held.images, pixels), perClass: p.conditional ? await perClassW1(real.images, real.labels!, held.images, held.labels!, pixels) : {} };
  }

  /** The class-fidelity classifier, trained once per process (seeded: every process trains the same one). */
  private classifier(): Promise<DigitClassifier> {
    this.classifierRun ??= trainClassifier(this.classifierTrain, { ...this.p.classifier!, seed: deriveSeed(this.splitSeed, 9) }).then((c) => {
      this.log(`class-fidelity classifier: ${(100 * c.heldOutAccuracy).toFixed(1)}% on ${c.heldOut} held-out real ${this.targetName} images`);
      return c;
    });
    return this.classifierRun;
  }

  /** The source model of a cell: in memory, or trained and saved (its cell), or loaded from models/ID. */
  private async source(c: SourceCell): Promise<SourceModel> {
    const have = this.sources.get(c.id);
    if (have) return have;
    if (!this.isDone(c.id)) this.adoptSource(c.id);
    const { family, seed, ns } = c;
    const { fp, runner } = this.families.get(family)!;
    const subset = subsample(this.sourceRows, Math.min(ns, this.sourceRows.length), deriveSeed(seed, ns), { stratifyBy: this.o.source.labels });
    const set = toImageSet(this.o.source, subset, this.p.size);
    const dir = join(this.out, 'models', c.id);
    const model = runner.source(deriveSeed(seed, 10));
    let trained = false;
    const record = await this.cell(c.id, async () => {
      const split = trainValidation(set, this.p.validationFraction.source, this.p.maxValidation, deriveSeed(seed, 13));
      const r = await this.train(model, c.id, split, fp.source, { seed: deriveSeed(seed, 11), label: `${family} source n_s=${set.n} seed ${seed}` });
      await model.save(dir);
      trained = true;
      return r;
    });
    if (!trained) {
      if (!existsSync(join(dir, MODEL_FILE))) throw new Error(`${dir}: the source model of cell ${c.id} is missing; delete cells/${c.id}.json to train it again`);
      model.load(dir);
      this.log(`[${c.id}] loaded from ${dir}`);
    }
    const entry = { model, record };
    this.sources.set(c.id, entry);
    const keep = new Set(Object.values(this.plan.sourceSizes)).size;
    for (const [id, s] of this.sources) {
      if (this.sources.size <= keep) break;
      s.model.dispose();
      this.sources.delete(id);
    }
    return entry;
  }

  /** One target cell: build, train on the target split, sample, score. */
  private async targetCell(c: TargetCell): Promise<CellResult> {
    const { family, seed, arm, nt, ns } = c;
    const { fp, runner } = this.families.get(family)!;
    const { targetTrain, p } = this;
    const subset = nt === 'all' || nt >= targetTrain.n ? allRows(targetTrain.n) : subsample(targetTrain.n, nt, deriveSeed(seed, 20), { stratifyBy: targetTrain.labels! });
    const data = trainValidation(pick(targetTrain, subset), p.validationFraction.target, p.maxValidation, deriveSeed(seed, 21));
    return this.cell(c.id, async (): Promise<CellResult> => {
      let source: TrainRecord | undefined;
      let model: Generative;
      let budget = fp.target;
      if (arm === 'transfer' || arm === 'variant') {
        const s = await this.source(this.plan.cells.find((x): x is SourceCell => x.id === c.needs[0])!);
        source = s.record;
        model = runner.transfer(s.model, arm === 'variant', deriveSeed(seed, 12));
      } else {
        // 'matched': the baseline given the transfer arm's total steps (source + target) as its cap and schedule; it stops on
        // the same patience as every run, since steps past its best only overfit (every matched run to the cap kept an early step).
        if (arm === 'matched') budget = { ...fp.target, cap: readJson<CellResult>(join(this.out, 'cells', `${c.needs[0]}.json`)).totalSteps };
        model = runner.baseline(deriveSeed(seed, 1));
      }
      const label = `${family} ${arm === 'variant' ? runner.variantName : arm} n_t=${subset.length}${ns === null ? '' : ` n_s=${ns}`} seed ${seed}`;
      const target = await this.train(model, c.id, data, budget, { seed: deriveSeed(seed, 2), label });
      const e = await this.evaluate(model, deriveSeed(seed, 3), join(this.out, 'samples', `${c.id}.png`));
      model.dispose();
      const totalSteps = target.steps + (source?.steps ?? 0);
      return { family, seed, nt: String(nt), ntUsed: subset.length, arm, ns, ...e, target, ...(source ? { source } : {}), totalSteps, totalImages: target.images + (source?.images ?? 0) };
    });
  }

  private async evaluate(model: Generative, seed: number, gridPath: string) {
    const { held, heldAll, p, pixels } = this;
    const d = p.size * p.size;
    const samples = await model.sample(held.n, p.conditional ? held.labels! : undefined, seed);
    const grid = gridOf(samples, held.labels!, d, p.conditional);
    savePngGrid(gridPath, grid.images, grid.n, p.size, p.size, 10);
    const classifier = this.fidelity ? await this.classifier() : null;
    const fidelity = classifier ? await classFidelity(classifier, samples, held.labels!) : null;
    return {
      w1: await imageW1(samples, held.images, pixels),
      perClass: p.conditional ? await perClassW1(samples, held.labels!, held.images, held.labels!, pixels) : {},
      ...(fidelity ? { classAccuracy: fidelity.accuracy, perClassAccuracy: fidelity.perClass } : {}),
      ...(model.bitsPerDim ? { bitsPerDim: await model.bitsPerDim(heldAll) } : {}),
    };
  }

  /** The cells of the plan not finished yet. */
  pending(): PlannedCell[] {
    return this.plan.cells.filter((c) => !this.isDone(c.id));
  }

  /** Reads every cell from the folder and writes results.json, results.md and the plots; all cells must be done. */
  report(): TransferResults {
    const missing = this.pending();
    if (missing.length) throw new Error(`${this.out}: ${missing.length} cell(s) not finished (${missing.slice(0, 5).map((c) => c.id).join(', ')}${missing.length > 5 ? ', ...' : ''}); the report needs every cell`);
    const { o, p, held } = this;
    const read = <T>(id: string) => readJson<T>(join(this.out, 'cells', `${id}.json`));
    const cells = this.plan.cells.filter((c): c is TargetCell => c.kind === 'target').map((c) => read<CellResult>(c.id));
    const results: TransferResults = {
      experiment: o.name,
      preset: o.presetName,
      protocolVersion: PROTOCOL_VERSION,
      config: p,
      sourceName: this.sourceName,
      targetName: this.targetName,
      metric: `exact W1 (Euclidean cost, pixels on the [0, 1] scale, ${p.size}x${p.size} images) between ${held.n} generated and ${held.n} held-out ${this.targetName} images`,
      floor: read<TransferResults['floor']>('floor'),
      classifier: this.fidelity ? read<{ heldOutAccuracy: number; heldOut: number }>('classifier') : null,
      targetTrain: this.targetTrain.n,
      heldOut: this.heldAll.n,
      evalN: held.n,
      sourceSizes: this.plan.sourceSizes,
      cells,
      summary: summarize(cells),
    };
    writeTransferReport(this.out, results);
    return results;
  }

  /** Frees the models this process holds (source models, the classifier). */
  async dispose(): Promise<void> {
    for (const s of this.sources.values()) s.model.dispose();
    this.sources.clear();
    const c = this.classifierRun;
    this.classifierRun = null;
    if (c) (await c.catch(() => null))?.dispose();
  }
}

/** The whole experiment in this process: every cell of the plan in order, then the report. */
export async function runAllCells(experiment: TransferExperiment): Promise<TransferResults> {
  try {
    for (const c of experiment.plan.cells) await experiment.runCell(c.id);
  } finally {
    await experiment.dispose();
  }
  return experiment.report();
}

export async function runTransferExperiment(o: TransferExperimentOptions): Promise<TransferResults> {
  return runAllCells(new TransferExperiment(o));
}
