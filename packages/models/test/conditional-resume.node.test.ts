/**
 * trainConditional's checkpoint option (the multi-source trainer of the Cheng et al. experiments):
 * resumed from a mid-run checkpoint, the heads, encoder and Adam state end bit-identical to an
 * uninterrupted run (time stream, batches and noise all continue where they were).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadSafetensors } from '@transfuse/core/node';
import { ConditionEncoder, MlpScoreNet } from '../src/diffusion/mlp.js';
import { pretrainMultiSource, type VectorTask } from '../src/transfer/multisource.js';
import { seededRandom, useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });
const root = mkdtempSync(join(tmpdir(), 'transfuse-conditional-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function task(n: number, seed: number): VectorTask {
  const rnd = seededRandom(seed);
  return { x: Float32Array.from({ length: n * 4 }, () => rnd(-1, 1)), y: Float32Array.from({ length: n * 2 }, () => rnd(-1, 1)), n };
}

const models = () => ({
  heads: [0, 1].map((k) => new MlpScoreNet({ dataDim: 4, condDim: 3, hidden: 16, depth: 2, timeDim: 8, tMax: 5, seed: 10 + k })),
  encoder: new ConditionEncoder({ inFeatures: 2, outFeatures: 3, hidden: 16, depth: 2, seed: 1 }),
});

describe('trainConditional checkpoints', () => {
  test('resumed from step 3 of 7 it ends bit-identical to the uninterrupted run', async () => {
    const tasks = [task(20, 1), task(12, 2)]; // batches cross epoch ends
    const opts = { steps: 7, batchSize: 8, lr: 3e-3, seed: 5, warmup: 2 };
    const a = models();
    const dirA = join(root, 'a');
    await pretrainMultiSource(tasks, { ...a, ...opts, checkpoint: { dir: dirA, every: 3, keep: 5, signals: false } });
    const dirB = join(root, 'b');
    cpSync(join(dirA, 'step-000000003'), join(dirB, 'step-000000003'), { recursive: true });
    const b = models();
    let batchesSeen = 0;
    const r = await pretrainMultiSource(tasks, { ...b, ...opts, onBatch: () => batchesSeen++, checkpoint: { dir: dirB, every: 3, keep: 5, resume: true, signals: false } });
    expect(r.steps).toBe(7);
    expect(batchesSeen).toBe(4 * tasks.length); // it did resume: only steps 4..7 ran
    const weights = async (m: ReturnType<typeof models>) => Promise.all([...m.heads, m.encoder].flatMap((x) => x.parameters()).map(async (p) => Array.from(await p.data())));
    expect(await weights(b)).toEqual(await weights(a));
    for (const file of ['model.safetensors', 'training_state.safetensors']) {
      const ta = loadSafetensors(join(dirA, 'step-000000007', file)).tensors;
      const tb = loadSafetensors(join(dirB, 'step-000000007', file)).tensors;
      expect([...tb.keys()]).toEqual([...ta.keys()]);
      for (const [k, t] of ta) expect(Buffer.from(tb.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), `${file}: ${k}`).toBe(true);
    }
    // A different setting is refused, not silently mixed into the run.
    await expect(pretrainMultiSource(tasks, { ...models(), ...opts, lr: 1e-3, checkpoint: { dir: dirB, resume: true, signals: false } })).rejects.toThrow(/cannot resume from .*step-000000007: it was saved with lr = 0.003, this run has 0.001/);
  });
});
