/**
 * Training checkpoints: a directory with two safetensors files.
 *
 *   model.safetensors           the model's parameters under their dotted PyTorch names (F32),
 *                               metadata { format: 'pt', transfuse.checkpoint: <id>, transfuse.step }
 *                               — loadable as is by Python's safetensors and torch load_state_dict.
 *   training_state.safetensors  optimizer.<param name>.<buffer> (exp_avg, exp_avg_sq,
 *                               momentum_buffer) and ema.<param name> tensors; metadata holds the
 *                               same id and step, and JSON for the optimizer (kind, groups with
 *                               options and parameter names, per-parameter step counts), the EMA
 *                               (update count) and the caller's `extra`; with early stopping,
 *                               best.<param name> tensors (the best weights so far) and JSON for
 *                               their score, step and the measurements since.
 *
 * Each file is written atomically (temp file, fsync, rename). The training state is written first
 * and the model last, both tagged with a fresh random id: a crash between the two leaves files
 * with different ids, which loadCheckpoint refuses and findLatestCheckpoint skips.
 *
 * During training, `saveNumberedCheckpoint` writes each checkpoint whole into a `.tmp-*` folder
 * and renames it to `step-000000500`, so a run folder only ever shows complete checkpoints and an
 * interrupted save never touches an earlier one; `TrainingCheckpoints` is the trainers' side
 * (periodic saves, keep-last-K, resume, save-and-stop on SIGINT/SIGTERM).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NamedArray } from '../io/safetensors.js';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors, syncDirectory } from '../io/safetensors_file.js';
import { fmt } from '../shape.js';
import { checkOptionKeys } from '../options.js';
import type { CheckpointingOptions, TrainerState, TrainingCheckpointer } from './checkpointing.js';
import type { Tensor } from '../tensor.js';
import type { Module } from '../nn/module.js';
import type { EMA } from '../optim/ema.js';
import type { BestWeights, BestWeightsState } from '../optim/best.js';
import type { BaseOptions, Optimizer, OptimizerStateDict, OptionValue } from '../optim/optimizer.js';

export const MODEL_FILE = 'model.safetensors';
export const STATE_FILE = 'training_state.safetensors';
const ID_KEY = 'transfuse.checkpoint';
const STEP_KEY = 'transfuse.step';
const OPTIMIZER_KEY = 'transfuse.optimizer';
const EMA_KEY = 'transfuse.ema';
const EXTRA_KEY = 'transfuse.extra';
const BEST_KEY = 'transfuse.best';

/** The early-stopping section of the metadata (the best copies are tensors best.<param name>). */
interface BestMeta {
  /** null: nothing measured yet (JSON has no Infinity). */
  best: number | null;
  bestStep: number;
  sinceBest: number;
  params: string[] | null;
}

/** What an optimizer section of the metadata holds (parameters by name instead of index). */
interface OptimizerMeta {
  kind: string;
  paramGroups: { options: Record<string, OptionValue>; baseLr: number; params: string[] }[];
  state: Record<string, { step: number; buffers: string[] }>;
}

type AnyOptimizer = Optimizer<BaseOptions>;

export interface CheckpointContents {
  model: Module;
  optimizer?: AnyOptimizer;
  ema?: EMA;
  /** Early stopping's best weights so far (their parameters must be the model's). */
  best?: BestWeights;
  /** Optimizer steps taken so far. */
  step: number;
  /** Anything JSON can hold (data order seed, epoch, config). */
  extra?: unknown;
}

async function f32Array(t: Tensor): Promise<NamedArray> {
  return { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array };
}

function paramNames(model: Module): Map<Tensor, string> {
  return new Map(model.namedParameters().map(([name, p]) => [p, name]));
}

/** Writes `dir`/model.safetensors and `dir`/training_state.safetensors (creating `dir`). */
export async function saveCheckpoint(dir: string, c: CheckpointContents): Promise<void> {
  const op = 'saveCheckpoint';
  checkOptionKeys(op, c, ['model', 'optimizer', 'ema', 'best', 'step', 'extra']);
  if (!Number.isSafeInteger(c.step) || c.step < 0) throw new Error(`${op}: step must be a non-negative integer, got ${c.step}`);
  const names = paramNames(c.model);
  const modelTensors = new Map<string, NamedArray>();
  for (const [p, name] of names) modelTensors.set(name, await f32Array(p));

  const state = new Map<string, NamedArray>();
  const id = randomBytes(12).toString('hex');
  const metadata: Record<string, string> = { [ID_KEY]: id, [STEP_KEY]: String(c.step) };
  if (c.optimizer) {
    const sd = c.optimizer.stateDict();
    const params = c.optimizer.params();
    const nameOf = (i: number): string => {
      const name = names.get(params[i]);
      if (name === undefined) throw new Error(`${op}: optimizer parameter ${i} ${fmt(params[i].shape)} is not a parameter of the model`);
      return name;
    };
    const meta: OptimizerMeta = {
      kind: sd.kind,
      paramGroups: sd.paramGroups.map((g) => ({ options: g.options, baseLr: g.baseLr, params: g.params.map(nameOf) })),
      state: {},
    };
    for (const [i, st] of sd.state) {
      const name = nameOf(i);
      meta.state[name] = { step: st.step, buffers: [...st.buffers.keys()] };
      for (const [b, t] of st.buffers) state.set(`optimizer.${name}.${b}`, await f32Array(t as Tensor));
    }
    metadata[OPTIMIZER_KEY] = JSON.stringify(meta);
  }
  if (c.ema) {
    const sd = c.ema.stateDict();
    for (const [name, t] of sd.shadow) state.set(`ema.${name}`, await f32Array(t));
    metadata[EMA_KEY] = JSON.stringify({ updates: sd.updates, names: [...sd.shadow.keys()] });
  }
  if (c.best) {
    const sd = c.best.stateDict();
    const nameOf = (p: Tensor, i: number): string => {
      const name = names.get(p);
      if (name === undefined) throw new Error(`${op}: early stopping's parameter ${i} ${fmt(p.shape)} is not a parameter of the model`);
      return name;
    };
    const params = sd.copies ? c.best.tracked.map(nameOf) : null;
    for (const [i, t] of (sd.copies ?? []).entries()) state.set(`best.${params![i]}`, await f32Array(t));
    const meta: BestMeta = { best: sd.copies ? sd.best : null, bestStep: sd.bestStep, sinceBest: sd.sinceBest, params };
    metadata[BEST_KEY] = JSON.stringify(meta);
  }
  if (c.extra !== undefined) metadata[EXTRA_KEY] = JSON.stringify(c.extra);

  mkdirSync(dir, { recursive: true });
  // Temp files of a save that was killed before its rename (saveSafetensors names them FILE.tmp-*).
  for (const name of readdirSync(dir)) {
    if (name.startsWith(`${STATE_FILE}.tmp-`) || name.startsWith(`${MODEL_FILE}.tmp-`)) rmSync(join(dir, name), { force: true });
  }
  saveSafetensors(join(dir, STATE_FILE), state, metadata);
  saveSafetensors(join(dir, MODEL_FILE), modelTensors, { format: 'pt', [ID_KEY]: id, [STEP_KEY]: String(c.step) });
}

/** The id and step of a complete checkpoint, or why it is not one. */
function inspect(dir: string): { ok: true; step: number } | { ok: false; why: string } {
  const modelPath = join(dir, MODEL_FILE);
  const statePath = join(dir, STATE_FILE);
  if (!existsSync(modelPath) || !existsSync(statePath)) return { ok: false, why: `${dir} lacks ${MODEL_FILE} or ${STATE_FILE}` };
  const m = readSafetensorsHeader(modelPath).metadata;
  const s = readSafetensorsHeader(statePath).metadata;
  if (!m[ID_KEY] || m[ID_KEY] !== s[ID_KEY]) {
    return {
      ok: false,
      why:
        `${modelPath} (step ${m[STEP_KEY] ?? '?'}, id ${m[ID_KEY] ?? 'none'}) and ${statePath} (step ${s[STEP_KEY] ?? '?'}, ` +
        `id ${s[ID_KEY] ?? 'none'}) come from different saves: a save was interrupted between the two files; use an earlier checkpoint`,
    };
  }
  return { ok: true, step: Number(m[STEP_KEY]) };
}

export interface LoadCheckpointOptions {
  model: Module;
  /** Restored from the checkpoint's optimizer section (which must exist). */
  optimizer?: AnyOptimizer;
  ema?: EMA;
  /** Restored from the checkpoint's early-stopping section (which must exist). */
  best?: BestWeights;
  /** Passed to model.loadStateDict (default true). */
  strict?: boolean;
}

/**
 * Restores the model's weights (in place), and the optimizer and EMA when given, from a
 * checkpoint directory. Returns the step and `extra` it was saved with.
 */
export function loadCheckpoint(dir: string, target: LoadCheckpointOptions): { step: number; extra: unknown } {
  const op = 'loadCheckpoint';
  checkOptionKeys(op, target, ['model', 'optimizer', 'ema', 'best', 'strict']);
  const status = inspect(dir);
  if (!status.ok) throw new Error(`${op}: ${status.why}`);
  const model = loadSafetensors(join(dir, MODEL_FILE));
  const { tensors, metadata } = loadSafetensors(join(dir, STATE_FILE));
  const json = <T>(key: string, what: string): T => {
    try {
      return JSON.parse(metadata[key]) as T;
    } catch (e) {
      throw new Error(`${op}: ${dir}/${STATE_FILE}: the ${what} metadata is not valid JSON: ${(e as Error).message}`);
    }
  };
  const tensorAt = (key: string): NamedArray => {
    const t = tensors.get(key);
    if (!t) throw new Error(`${op}: ${dir}/${STATE_FILE} lacks the tensor '${key}'`);
    return t;
  };

  // Build everything first, so a bad optimizer or EMA section fails before the model changes.
  let optimizerState: OptimizerStateDict | null = null;
  if (target.optimizer) {
    if (!(OPTIMIZER_KEY in metadata)) throw new Error(`${op}: ${dir} holds no optimizer state`);
    const meta = json<OptimizerMeta>(OPTIMIZER_KEY, 'optimizer');
    const index = new Map<string, number>();
    const names = paramNames(target.model);
    target.optimizer.params().forEach((p, i) => {
      const name = names.get(p);
      if (name === undefined) throw new Error(`${op}: optimizer parameter ${i} ${fmt(p.shape)} is not a parameter of the model`);
      index.set(name, i);
    });
    const indexOf = (name: string): number => {
      const i = index.get(name);
      if (i === undefined) throw new Error(`${op}: the saved optimizer state names '${name}', which this optimizer does not hold`);
      return i;
    };
    optimizerState = {
      kind: meta.kind,
      paramGroups: meta.paramGroups.map((g, gi) => {
        const params = g.params.map(indexOf);
        const current = target.optimizer!.paramGroups[gi]?.params.map((p) => names.get(p)) ?? [];
        if (current.join('\n') !== g.params.join('\n')) {
          throw new Error(`${op}: optimizer group ${gi} holds [${current.join(', ')}] but the checkpoint's holds [${g.params.join(', ')}]`);
        }
        return { options: g.options, baseLr: g.baseLr, params };
      }),
      state: new Map(
        Object.entries(meta.state).map(([name, st]) => [
          indexOf(name),
          { step: st.step, buffers: new Map(st.buffers.map((b) => [b, tensorAt(`optimizer.${name}.${b}`)])) },
        ]),
      ),
    };
  }
  let emaState: { updates: number; shadow: Map<string, NamedArray> } | null = null;
  if (target.ema) {
    if (!(EMA_KEY in metadata)) throw new Error(`${op}: ${dir} holds no EMA weights`);
    const meta = json<{ updates: number; names: string[] }>(EMA_KEY, 'EMA');
    emaState = { updates: meta.updates, shadow: new Map(meta.names.map((n) => [n, tensorAt(`ema.${n}`)])) };
  }

  let bestState: BestWeightsState<NamedArray> | null = null;
  if (target.best) {
    if (!(BEST_KEY in metadata)) throw new Error(`${op}: ${dir} holds no early-stopping state (best weights)`);
    const meta = json<BestMeta>(BEST_KEY, 'early-stopping');
    const names = paramNames(target.model);
    const current = target.best.tracked.map((p) => names.get(p));
    if (meta.params && current.join('\n') !== meta.params.join('\n')) {
      throw new Error(`${op}: early stopping tracks [${current.join(', ')}] but the checkpoint's best weights are of [${meta.params.join(', ')}]`);
    }
    bestState = { best: meta.best ?? Infinity, bestStep: meta.bestStep, sinceBest: meta.sinceBest, copies: meta.params?.map((n) => tensorAt(`best.${n}`)) ?? null };
  }

  target.model.loadStateDict(model.tensors, { strict: target.strict ?? true });
  if (optimizerState) target.optimizer!.loadStateDict(optimizerState);
  if (emaState) target.ema!.loadStateDict(emaState);
  if (bestState) target.best!.loadStateDict(bestState);
  return { step: status.step, extra: EXTRA_KEY in metadata ? json<unknown>(EXTRA_KEY, 'extra') : undefined };
}

/**
 * The newest complete checkpoint among the subdirectories of `runDir` (highest saved step; ones
 * whose two files disagree, from an interrupted save, are skipped), or null if there is none.
 */
export function findLatestCheckpoint(runDir: string): string | null {
  if (!existsSync(runDir)) return null;
  let best: { dir: string; step: number } | null = null;
  for (const entry of readdirSync(runDir, { withFileTypes: true })) {
    // `.tmp-*` folders are saves in progress (or killed ones), never a checkpoint to resume from.
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = join(runDir, entry.name);
    let status: ReturnType<typeof inspect>;
    try {
      status = inspect(dir);
    } catch {
      continue; // unreadable or corrupt files: not a usable checkpoint
    }
    if (status.ok && (!best || status.step > best.step)) best = { dir, step: status.step };
  }
  return best?.dir ?? null;
}

const STEP_DIR = /^step-(\d+)$/;
const stepDirName = (step: number) => `step-${String(step).padStart(9, '0')}`;

/**
 * Saves a complete checkpoint as `runDir`/step-NNNNNNNNN: written into a `.tmp-*` folder first
 * and renamed into place, so the folder appears whole or not at all. Leftover `.tmp-*` folders of
 * killed saves are removed first, and only the newest `keep` numbered checkpoints are kept.
 * Returns the checkpoint's folder.
 */
export async function saveNumberedCheckpoint(runDir: string, c: CheckpointContents, keep = 3): Promise<string> {
  if (!Number.isSafeInteger(keep) || keep < 1) throw new Error(`saveNumberedCheckpoint: keep must be an integer >= 1, got ${keep}`);
  mkdirSync(runDir, { recursive: true });
  for (const name of readdirSync(runDir)) if (name.startsWith('.tmp-')) rmSync(join(runDir, name), { recursive: true, force: true });
  const temp = join(runDir, `.tmp-${randomBytes(6).toString('hex')}`);
  await saveCheckpoint(temp, c);
  const target = join(runDir, stepDirName(c.step));
  if (existsSync(target)) {
    // The same step saved again (a stop right after a resume): swap, never leaving the step absent.
    const old = join(runDir, `.tmp-old-${randomBytes(6).toString('hex')}`);
    renameSync(target, old);
    renameSync(temp, target);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(temp, target);
  }
  syncDirectory(runDir);
  const numbered = readdirSync(runDir)
    .map((name) => ({ name, m: STEP_DIR.exec(name) }))
    .filter((e) => e.m)
    .sort((a, b) => Number(b.m![1]) - Number(a.m![1]));
  // Renamed out of the way first: a kill while deleting must not leave a half-deleted step-* folder.
  for (const e of numbered.slice(keep)) {
    const doomed = join(runDir, `.tmp-old-${randomBytes(6).toString('hex')}`);
    renameSync(join(runDir, e.name), doomed);
    rmSync(doomed, { recursive: true, force: true });
  }
  return target;
}

const CHECKPOINTING_KEYS = ['dir', 'every', 'keep', 'resume', 'signals', 'abort', 'onSave'];

/**
 * The trainers' checkpointing: `resume()` restores the newest complete checkpoint, `afterStep`
 * saves every `every` steps, at the last step and when a signal asked to stop (then it returns
 * true and the trainer returns early with `interrupted`).
 */
export class TrainingCheckpoints implements TrainingCheckpointer {
  private readonly every: number;
  private readonly keep: number;
  private stop = false;
  private readonly onSignal: (signal: NodeJS.Signals) => void;
  private readonly signals: boolean;

  constructor(
    private readonly trainer: string,
    private readonly o: CheckpointingOptions,
    private readonly contents: Omit<CheckpointContents, 'step' | 'extra'>,
  ) {
    checkOptionKeys(`${trainer}: checkpoint`, o, CHECKPOINTING_KEYS);
    if (typeof o.dir !== 'string' || !o.dir) throw new Error(`${trainer}: checkpoint.dir must name a folder`);
    this.every = o.every ?? 200;
    this.keep = o.keep ?? 3;
    if (!Number.isSafeInteger(this.every) || this.every < 1) throw new Error(`${trainer}: checkpoint.every must be an integer >= 1, got ${this.every}`);
    if (!Number.isSafeInteger(this.keep) || this.keep < 1) throw new Error(`${trainer}: checkpoint.keep must be an integer >= 1, got ${this.keep}`);
    this.signals = o.signals ?? true;
    this.onSignal = (signal) => {
      if (this.stop) {
        process.stderr.write(`\n${trainer}: second ${signal}, exiting without saving\n`);
        process.exit(130);
      }
      this.stop = true;
      process.stderr.write(`\n${trainer}: ${signal}: saving a checkpoint after this step (send it again to exit at once)\n`);
    };
    if (this.signals) {
      process.on('SIGINT', this.onSignal);
      process.on('SIGTERM', this.onSignal);
    }
  }

  /** Restores the newest checkpoint if resuming; returns its step and loop state, or null to start fresh. */
  resume(state: Omit<TrainerState, 'loop'>): { step: number; loop: Record<string, unknown> } | null {
    if (!this.o.resume) return null;
    const dir = findLatestCheckpoint(this.o.dir);
    if (!dir) return null;
    // Check the settings before any weights change.
    const { extra: peek } = readCheckpointExtra(dir);
    const saved = peek as Partial<TrainerState> | undefined;
    if (!saved || saved.trainer !== state.trainer) {
      throw new Error(`${this.trainer}: ${dir} was not saved by ${state.trainer} (found ${saved?.trainer ?? 'no trainer state'}); resume from a checkpoint of the same run`);
    }
    for (const [k, v] of Object.entries(state.settings)) {
      if (JSON.stringify(saved.settings?.[k]) !== JSON.stringify(v)) {
        throw new Error(`${this.trainer}: cannot resume from ${dir}: it was saved with ${k} = ${JSON.stringify(saved.settings?.[k])}, this run has ${JSON.stringify(v)}`);
      }
    }
    const { step } = loadCheckpoint(dir, { ...this.contents });
    return { step, loop: saved.loop ?? {} };
  }

  /** A signal (or the abort option) asked to stop. */
  get stopRequested(): boolean {
    return this.stop || !!this.o.abort?.aborted;
  }

  /** Call after step `step` (1-based) of `total`; saves when due. Returns true when training must stop now. */
  async afterStep(step: number, total: number, state: () => TrainerState): Promise<boolean> {
    const stop = this.stopRequested;
    if (step % this.every === 0 || step === total || stop) {
      const dir = await saveNumberedCheckpoint(this.o.dir, { ...this.contents, step, extra: state() }, this.keep);
      this.o.onSave?.(dir, step);
    }
    return stop;
  }

  /** Removes the signal handlers. */
  dispose(): void {
    if (this.signals) {
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
    }
  }
}

/** The `extra` a checkpoint was saved with, without loading any tensor. */
export function readCheckpointExtra(dir: string): { step: number; extra: unknown } {
  const status = inspect(dir);
  if (!status.ok) throw new Error(`readCheckpointExtra: ${status.why}`);
  const meta = readSafetensorsHeader(join(dir, STATE_FILE)).metadata;
  return { step: status.step, extra: EXTRA_KEY in meta ? (JSON.parse(meta[EXTRA_KEY]) as unknown) : undefined };
}
