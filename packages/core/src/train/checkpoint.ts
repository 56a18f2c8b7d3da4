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
 *                               (update count) and the caller's `extra`.
 *
 * Each file is written atomically (temp file, fsync, rename). The training state is written first
 * and the model last, both tagged with a fresh random id: a crash between the two leaves files
 * with different ids, which loadCheckpoint refuses and findLatestCheckpoint skips. Save each
 * checkpoint to its own directory (e.g. step-000500) so an interrupted save never damages the
 * previous one.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { NamedArray } from '../io/safetensors.js';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../io/safetensors_file.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import type { Module } from '../nn/module.js';
import type { EMA } from '../optim/ema.js';
import type { BaseOptions, Optimizer, OptimizerStateDict, OptionValue } from '../optim/optimizer.js';

export const MODEL_FILE = 'model.safetensors';
export const STATE_FILE = 'training_state.safetensors';
const ID_KEY = 'transfuse.checkpoint';
const STEP_KEY = 'transfuse.step';
const OPTIMIZER_KEY = 'transfuse.optimizer';
const EMA_KEY = 'transfuse.ema';
const EXTRA_KEY = 'transfuse.extra';

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
  if (c.extra !== undefined) metadata[EXTRA_KEY] = JSON.stringify(c.extra);

  mkdirSync(dir, { recursive: true });
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
  /** Passed to model.loadStateDict (default true). */
  strict?: boolean;
}

/**
 * Restores the model's weights (in place), and the optimizer and EMA when given, from a
 * checkpoint directory. Returns the step and `extra` it was saved with.
 */
export function loadCheckpoint(dir: string, target: LoadCheckpointOptions): { step: number; extra: unknown } {
  const op = 'loadCheckpoint';
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

  target.model.loadStateDict(model.tensors, { strict: target.strict ?? true });
  if (optimizerState) target.optimizer!.loadStateDict(optimizerState);
  if (emaState) target.ema!.loadStateDict(emaState);
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
    if (!entry.isDirectory()) continue;
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
