/**
 * Early stopping and checkpoints together: a checkpoint holds the best weights so far, their score
 * and step, the checks since and the validation curve, so a run resumed from a mid-run checkpoint
 * (as after a SIGKILL) or stopped by its abort option (as by SIGINT) and resumed ends bit-identical
 * to an uninterrupted one: the same weights, Adam state, kept step and curve.
 */
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { CheckpointingOptions } from '@transfuse/core';
import { loadSafetensors } from '@transfuse/core/node';
import { createRng } from '../src/data/prng.js';
import { Flow, trainFlow, splitFlowData, type FlowData } from '../src/flows/index.js';
import { NoiseSchedule, UNet2D, UNET_PRESETS, trainDiffusion } from '../src/index.js';
import { loadDigits, prepareDigits } from '@transfuse/models/node';
import { useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });
const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'transfuse-validation-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const stepDir = (step: number) => `step-${String(step).padStart(9, '0')}`;
const bytes = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Every parameter's bytes, by name. */
async function weights(m: { namedParameters(): [string, { data(): Promise<Float32Array | Int32Array> }][] }): Promise<Map<string, Buffer>> {
  return new Map(await Promise.all(m.namedParameters().map(async ([n, p]) => [n, bytes(await p.data())] as const)));
}

function expectSameWeights(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, v] of a) expect(Buffer.compare(v, b.get(k)!), k).toBe(0);
}

/** Both files of two checkpoint folders hold byte-identical tensors (Adam moments and best copies included). */
function expectSameCheckpoint(a: string, b: string): void {
  for (const file of ['model.safetensors', 'training_state.safetensors']) {
    const ta = loadSafetensors(join(a, file));
    const tb = loadSafetensors(join(b, file));
    expect([...tb.tensors.keys()].sort()).toEqual([...ta.tensors.keys()].sort());
    for (const [k, t] of ta.tensors) expect(Buffer.compare(bytes(t.data as Float32Array), bytes(tb.tensors.get(k)!.data as Float32Array)), `${file}: ${k}`).toBe(0);
    if (file === 'training_state.safetensors') expect(tb.metadata['transfuse.best']).toBe(ta.metadata['transfuse.best']);
  }
}

/** Equal mixture of N((±2, 0), diag(0.5², 0.8²)): 40 training points overfit within a few hundred steps. */
function mixture(n: number, seed: number): FlowData {
  const rng = createRng(seed);
  const x = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    x[2 * i] = (rng.int(2) === 0 ? -2 : 2) + 0.5 * rng.normal();
    x[2 * i + 1] = 0.8 * rng.normal();
  }
  return { x, n, dim: 2 };
}

describe('trainFlow: early stopping with checkpoints', () => {
  const { train, validation } = splitFlowData(mixture(60, 21), 1 / 3, 22);
  const flow = () => new Flow({ dim: 2, coupling: 'affine', layers: 6, hidden: [64, 64], scaleBound: 2, seed: 23 });
  const every = 20;
  const opts = { steps: 3000, batchSize: 40, lr: 1e-2, seed: 24, label: null, validation, validateEvery: every, patience: 4 };
  const ckpt = (dir: string, more: Partial<CheckpointingOptions> = {}): CheckpointingOptions => ({ dir, every, keep: 1000, signals: false, ...more });

  test('killed after the best step and resumed, or aborted and resumed: the same weights, kept step and curve', async () => {
    const a = flow();
    const dirA = join(root, 'flow-a');
    const ref = await trainFlow(a, train, { ...opts, checkpoint: ckpt(dirA) });
    const v = ref.validation!;
    // The run stops early, so the kept weights are older than the last checkpoint.
    expect(ref.steps).toBe(v.bestStep + 4 * every);
    expect(ref.steps).toBeLessThan(3000);
    const killedAt = v.bestStep + 2 * every; // between the best check and the stop
    const refWeights = await weights(a);

    // SIGKILL after the save of step killedAt: only the checkpoints up to it exist.
    const dirB = join(root, 'flow-b');
    cpSync(join(dirA, stepDir(killedAt)), join(dirB, stepDir(killedAt)), { recursive: true });
    const b = flow();
    const resumed = await trainFlow(b, train, { ...opts, checkpoint: ckpt(dirB, { resume: true }) });
    expect(resumed.validation).toEqual(v);
    expect(resumed.steps).toBe(ref.steps);
    expect(resumed.losses).toEqual(ref.losses);
    expectSameWeights(refWeights, await weights(b));
    expectSameCheckpoint(join(dirA, stepDir(killedAt + every)), join(dirB, stepDir(killedAt + every)));

    // Stopped by the abort option right after the save of step killedAt (the SIGINT path): it saves
    // the next step, returns interrupted, and a resumed run finishes the same way.
    const dirC = join(root, 'flow-c');
    const stop = new AbortController();
    const c = flow();
    const interrupted = await trainFlow(c, train, { ...opts, checkpoint: ckpt(dirC, { abort: stop.signal, onSave: (_, step) => step === killedAt && stop.abort() }) });
    expect(interrupted.interrupted).toBe(true);
    expect(interrupted.steps).toBe(killedAt + 1);
    expect(readdirSync(dirC)).toContain(stepDir(killedAt + 1));
    const c2 = flow();
    const finished = await trainFlow(c2, train, { ...opts, checkpoint: ckpt(dirC, { resume: true }) });
    expect(finished.interrupted).toBe(false);
    expect(finished.validation).toEqual(v);
    expectSameWeights(refWeights, await weights(c2));

    // A different patience is another run: refused, not mixed in.
    await expect(trainFlow(flow(), train, { ...opts, patience: 5, checkpoint: ckpt(dirC, { resume: true }) })).rejects.toThrow(
      /cannot resume from .*: it was saved with validation = \{"n":20,"validateEvery":20,"patience":4\}, this run has .*"patience":5/,
    );
    for (const f of [a, b, c, c2]) f.dispose();
  }, 300_000);
});

describe('trainDiffusion: early stopping with checkpoints', () => {
  test('killed at the best step and resumed: the same weights, Adam and EMA state, kept step and curve', async () => {
    const all = prepareDigits(loadDigits(DATA, 'usps', 'train'), null, { size: 16, n: 16, seed: 1 });
    const half = (from: number) => ({ ...all, n: 8, images: all.images.slice(from * 256, (from + 8) * 256), labels: all.labels!.slice(from, from + 8) });
    const [data, validation] = [half(0), half(8)];
    const schedule = new NoiseSchedule();
    const model = () => new UNet2D({ sampleSize: 16, ...UNET_PRESETS.tiny, seed: 3 });
    const opts = { steps: 6, batchSize: 4, lr: 2e-2, seed: 4, label: null, emaDecay: 0.9, validation, validateEvery: 2 };
    const ckpt = (dir: string, resume = false): CheckpointingOptions => ({ dir, every: 2, keep: 100, signals: false, resume });

    const a = model();
    const dirA = join(root, 'diffusion-a');
    const ref = await trainDiffusion(a, schedule, data, { ...opts, checkpoint: ckpt(dirA) });
    expect(ref.validation!.history.map(([s]) => s)).toEqual([2, 4, 6]);
    // Measured: best at step 4 (0.557), worse at 6 (0.683): the kept weights come from the checkpoint resumed from.
    expect(ref.validation!.bestStep).toBe(4);
    const dirB = join(root, 'diffusion-b');
    cpSync(join(dirA, stepDir(4)), join(dirB, stepDir(4)), { recursive: true });
    const b = model();
    const resumed = await trainDiffusion(b, schedule, data, { ...opts, checkpoint: ckpt(dirB, true) });
    expect(resumed.validation).toEqual(ref.validation);
    expect(resumed.steps).toBe(6);
    expectSameWeights(await weights(a), await weights(b));
    expectSameCheckpoint(join(dirA, stepDir(6)), join(dirB, stepDir(6)));
    a.dispose();
    b.dispose();
  }, 300_000);
});
