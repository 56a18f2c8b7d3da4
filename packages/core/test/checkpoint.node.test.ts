/**
 * Checkpoints: the on-disk layout (PyTorch names, readable safetensors), bit-exact save → load,
 * resume after an interruption equal to an uninterrupted run, and refusal of a half-written save.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import {
  AdamW,
  BestWeights,
  Conv2d,
  EMA,
  Flatten,
  GroupNorm,
  Linear,
  SGD,
  Sequential,
  SiLU,
  crossEntropy,
  tensor,
  type Tensor,
} from '@transfuse/core';
import { MODEL_FILE, STATE_FILE, findLatestCheckpoint, loadCheckpoint, loadSafetensors, saveCheckpoint, saveSafetensors } from '@transfuse/core/node';
import { useGpu, values } from './helpers.js';

useGpu();

const root = mkdtempSync(join(tmpdir(), 'transfuse-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A small conv net; `seed` fixes its initial weights. */
function makeModel(seed: number): Sequential {
  return new Sequential(
    new Conv2d(1, 4, 3, { padding: 1, seed }),
    new GroupNorm(2, 4),
    new SiLU(),
    new Conv2d(4, 4, 3, { stride: 2, padding: 1, seed: seed + 1 }),
    new Flatten(),
    new Linear(4 * 3 * 3, 3, { seed: seed + 2 }),
  );
}

/** Deterministic batch for a step: images and labels depend only on the step number. */
function batch(step: number): { x: Tensor; y: Tensor } {
  const x = Float32Array.from({ length: 4 * 36 }, (_, i) => Math.sin(i * 0.31 + step * 1.7));
  const y = Int32Array.from({ length: 4 }, (_, i) => (i + step) % 3);
  return { x: tensor(x, [4, 1, 6, 6]), y: tensor(y) };
}

function trainStep(model: Sequential, opt: T.Optimizer<T.BaseOptions>, ema: EMA, step: number): void {
  opt.zeroGrad();
  T.tidy(() => {
    const { x, y } = batch(step);
    crossEntropy(model.forward(x), y).backward();
  });
  // A schedule and a gradient clip: resume must reproduce both.
  opt.setLrFactor(T.cosineWithWarmup(2, 10)(step));
  T.clipGradNorm(model.parameters(), 0.5).dispose();
  opt.step();
  ema.update();
}

async function snapshot(ts: Iterable<Tensor>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of ts) out.push((await t.data()) as Float32Array);
  return out;
}

describe('checkpoints', () => {
  test('save writes PyTorch-named F32 weights and prefixed optimizer/EMA state; load restores them bit for bit', async () => {
    const model = makeModel(1);
    const opt = new AdamW(model.parameters(), { lr: 0.01 });
    const ema = new EMA(model, { decay: 0.9 });
    for (let s = 0; s < 3; s++) trainStep(model, opt, ema, s);
    const dir = join(root, 'exact');
    await saveCheckpoint(dir, { model, optimizer: opt, ema, step: 3, extra: { epoch: 1, note: 'x' } });
    expect(readdirSync(dir).sort()).toEqual([MODEL_FILE, STATE_FILE]);

    const weights = loadSafetensors(join(dir, MODEL_FILE));
    expect([...weights.tensors.keys()]).toEqual([...model.stateDict().keys()]);
    expect(weights.tensors.get('3.weight')).toMatchObject({ dtype: 'F32', shape: [4, 4, 3, 3] });
    expect(weights.metadata.format).toBe('pt');
    const state = loadSafetensors(join(dir, STATE_FILE));
    expect(state.tensors.has('optimizer.0.weight.exp_avg')).toBe(true);
    expect(state.tensors.has('optimizer.5.bias.exp_avg_sq')).toBe(true);
    expect(state.tensors.has('ema.1.weight')).toBe(true);
    expect(state.metadata['transfuse.checkpoint']).toBe(weights.metadata['transfuse.checkpoint']);

    const fresh = makeModel(99);
    const freshOpt = new AdamW(fresh.parameters(), { lr: 5 });
    const freshEma = new EMA(fresh);
    const info = loadCheckpoint(dir, { model: fresh, optimizer: freshOpt, ema: freshEma });
    expect(info).toEqual({ step: 3, extra: { epoch: 1, note: 'x' } });
    expect(await snapshot(fresh.parameters())).toEqual(await snapshot(model.parameters()));
    expect(await snapshot(freshEma.shadow.values())).toEqual(await snapshot(ema.shadow.values()));
    const moments = (o: T.Optimizer<T.BaseOptions>, m: Sequential) => m.parameters().flatMap((p) => [...o.stateOf(p)!.buffers.values()]);
    expect(await snapshot(moments(freshOpt, fresh))).toEqual(await snapshot(moments(opt, model)));
    expect(freshOpt.lr).toBe(opt.lr);
    expect(freshEma.updates).toBe(3);
  });

  test('resume after an interruption equals the uninterrupted run bit for bit', async () => {
    const full = makeModel(5);
    const fullOpt = new AdamW(full.parameters(), { lr: 0.02, weightDecay: 0.05 });
    const fullEma = new EMA(full, { decay: 0.8 });
    for (let s = 0; s < 10; s++) trainStep(full, fullOpt, fullEma, s);

    const first = makeModel(5);
    const firstOpt = new AdamW(first.parameters(), { lr: 0.02, weightDecay: 0.05 });
    const firstEma = new EMA(first, { decay: 0.8 });
    for (let s = 0; s < 5; s++) trainStep(first, firstOpt, firstEma, s);
    const dir = join(root, 'resume', 'step-5');
    await saveCheckpoint(dir, { model: first, optimizer: firstOpt, ema: firstEma, step: 5 });
    first.dispose();
    firstOpt.dispose();
    firstEma.dispose();

    // A new process would start here: different initial weights, fresh optimizer and EMA.
    const resumed = makeModel(123);
    const resumedOpt = new AdamW(resumed.parameters(), { lr: 0.02, weightDecay: 0.05 });
    const resumedEma = new EMA(resumed, { decay: 0.8 });
    const { step } = loadCheckpoint(dir, { model: resumed, optimizer: resumedOpt, ema: resumedEma });
    for (let s = step; s < 10; s++) trainStep(resumed, resumedOpt, resumedEma, s);

    expect(await snapshot(resumed.parameters())).toEqual(await snapshot(full.parameters()));
    expect(await snapshot(resumedEma.shadow.values())).toEqual(await snapshot(fullEma.shadow.values()));
  });

  test('a save interrupted between its two files is refused, and findLatestCheckpoint skips it', async () => {
    const model = makeModel(2);
    const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const run = join(root, 'run');
    await saveCheckpoint(join(run, 'step-1'), { model, optimizer: opt, step: 1 });
    await saveCheckpoint(join(run, 'step-2'), { model, optimizer: opt, step: 2 });
    // A crash after the training state of step 3 was written but before its model file.
    await saveCheckpoint(join(run, 'step-3'), { model, optimizer: opt, step: 3 });
    const stale = loadSafetensors(join(run, 'step-2', MODEL_FILE));
    saveSafetensors(join(run, 'step-3', MODEL_FILE), stale.tensors, stale.metadata);
    expect(() => loadCheckpoint(join(run, 'step-3'), { model })).toThrow(/come from different saves: a save was interrupted between the two files/);
    expect(findLatestCheckpoint(run)).toBe(join(run, 'step-2'));
    expect(findLatestCheckpoint(join(root, 'nowhere'))).toBeNull();
  });

  test('loading refuses a mismatched model or optimizer before changing anything', async () => {
    const model = makeModel(3);
    const dir = join(root, 'plain');
    await saveCheckpoint(dir, { model, step: 0 });
    const other = new Sequential(new Linear(2, 2));
    const before = await snapshot(other.parameters());
    expect(() => loadCheckpoint(dir, { model: other })).toThrow(/missing keys: 0\.bias.*|mis-shaped keys/s);
    expect(await snapshot(other.parameters())).toEqual(before);
    const target = makeModel(4);
    expect(() => loadCheckpoint(dir, { model: target, optimizer: new SGD(target.parameters(), { lr: 1 }) })).toThrow(
      /holds no optimizer state/,
    );
    await expect(saveCheckpoint(dir, { model, optimizer: new SGD([T.zeros([1]).requireGrad()], { lr: 1 }), step: 1 })).rejects.toThrow(
      /optimizer parameter 0 \[1\] is not a parameter of the model/,
    );
  });

  test('early stopping: the best weights, score, step and checks since travel in the training state and restore bit for bit', async () => {
    const model = makeModel(6);
    const opt = new AdamW(model.parameters(), { lr: 0.02 });
    const ema = new EMA(model, { decay: 0.9 });
    const best = new BestWeights(model.parameters());
    const dirEmpty = join(root, 'best-empty');
    // Before the first check there are no copies, and the score is Infinity (JSON has none): it round-trips too.
    await saveCheckpoint(dirEmpty, { model, best, step: 0 });
    const m7 = makeModel(7);
    const fresh7 = new BestWeights(m7.parameters());
    loadCheckpoint(dirEmpty, { model: m7, best: fresh7 });
    expect([fresh7.best, fresh7.bestStep, fresh7.sinceBest, fresh7.stateDict().copies]).toEqual([Infinity, -1, 0, null]);

    trainStep(model, opt, ema, 0);
    best.offer(0.5, 1);
    const kept = await snapshot(model.parameters());
    trainStep(model, opt, ema, 1);
    best.offer(0.75, 2);
    const dir = join(root, 'best');
    await saveCheckpoint(dir, { model, optimizer: opt, ema, best, step: 2 });
    const state = loadSafetensors(join(dir, STATE_FILE));
    expect(state.tensors.has('best.5.bias')).toBe(true);
    expect(JSON.parse(state.metadata['transfuse.best'])).toMatchObject({ best: 0.5, bestStep: 1, sinceBest: 1 });

    const resumed = makeModel(8);
    const resumedBest = new BestWeights(resumed.parameters());
    loadCheckpoint(dir, { model: resumed, best: resumedBest });
    expect([resumedBest.best, resumedBest.bestStep, resumedBest.sinceBest]).toEqual([0.5, 1, 1]);
    expect(resumedBest.offer(0.6, 3)).toBe(false);
    expect(resumedBest.sinceBest).toBe(2);
    resumedBest.restore();
    expect(await snapshot(resumed.parameters())).toEqual(kept);
    // A checkpoint saved without early stopping cannot resume one that uses it.
    expect(() => loadCheckpoint(join(root, 'exact'), { model: makeModel(9), best: new BestWeights([]) })).toThrow(/holds no early-stopping state/);
    // Best weights of other parameters are refused before anything changes.
    const other = makeModel(10);
    const otherBest = new BestWeights(other.parameters().slice(1));
    const before = await snapshot(other.parameters());
    expect(() => loadCheckpoint(dir, { model: other, best: otherBest })).toThrow(/early stopping tracks \[0\.bias, .*\] but the checkpoint's best weights are of \[0\.weight, 0\.bias/);
    expect(await snapshot(other.parameters())).toEqual(before);
    for (const b of [best, resumedBest, fresh7, otherBest]) b.dispose();
  });
});
