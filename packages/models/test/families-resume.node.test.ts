/**
 * Resumable experiment cells: a family's train() with a checkpointDir, stopped mid-run (its abort
 * option, the SIGINT path) or killed (only an earlier checkpoint left), and run again with the same
 * folder, gives the TrainRecord and weights of an uninterrupted run without checkpoints.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { Module } from '@transfuse/core';
import { diffusionFamily, flowFamily, loadDigits, prepareDigits, TrainingInterrupted, type TrainingBudget, type TrainRecord } from '@transfuse/models/node';
import { useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });
const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'transfuse-cells-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const digits = prepareDigits(loadDigits(DATA, 'usps', 'train'), null, { size: 16, n: 48, seed: 1 });
const rows = (from: number, n: number) => ({ ...digits, n, images: digits.images.slice(from * 256, (from + n) * 256), labels: digits.labels!.slice(from, from + n) });
const [train, validation] = [rows(0, 32), rows(32, 16)];
const budget: TrainingBudget = { cap: 12, batchSize: 8, lr: 1e-2, validateEvery: 3, patience: 2 };
const shape = { size: 16, conditional: true, numClasses: 10 };
const stepDir = (step: number) => `step-${String(step).padStart(9, '0')}`;

/** The model inside a family's Generative (the families keep it as `unet` or `flow`). */
const moduleOf = (g: object) => ((g as { unet?: Module }).unet ?? (g as { flow?: Module }).flow)!;
async function weights(g: object): Promise<Map<string, Buffer>> {
  return new Map(await Promise.all(moduleOf(g).namedParameters().map(async ([n, p]) => { const d = await p.data(); return [n, Buffer.from(d.buffer, d.byteOffset, d.byteLength)] as const; })));
}
const withoutTime = (r: TrainRecord) => ({ ...r, seconds: 0 });

describe.each([
  ['diffusion', () => diffusionFamily(shape, 'tiny', 10)],
  ['flow', () => flowFamily(shape)],
] as const)('%s family: resumable cells', (name, family) => {
  test('stopped or killed after its first checkpoint, a cell resumes to the uninterrupted record and weights', async () => {
    const o = { seed: 7, label: `${name} cell` };
    const reference = family().baseline(3);
    const ref = await reference.train(train, validation, budget, o);
    expect(ref.curve.length).toBeGreaterThanOrEqual(2);

    // The SIGINT path: abort once the first checkpoint exists; the next step is saved and the run throws.
    const dir = join(root, `${name}-stopped`);
    const firstCheckpoint = { get aborted() { return existsSync(join(dir, stepDir(3))); } } as AbortSignal;
    const stopped = family().baseline(3);
    const error = await stopped.train(train, validation, budget, { ...o, checkpointDir: dir, abort: firstCheckpoint }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingInterrupted);
    expect((error as TrainingInterrupted).step).toBe(4);
    expect(readdirSync(dir)).toEqual([stepDir(3), stepDir(4)]);
    // The SIGKILL path (below): a run killed during step 4 leaves only the checkpoint of step 3.
    const killed = join(root, `${name}-killed`);
    cpSync(join(dir, stepDir(3)), join(killed, stepDir(3)), { recursive: true });
    const resumed = family().baseline(3); // a new process: fresh weights, resumed from the folder
    expect(withoutTime(await resumed.train(train, validation, budget, { ...o, checkpointDir: dir }))).toEqual(withoutTime(ref));
    expect(await weights(resumed)).toEqual(await weights(reference));

    const again = family().baseline(3);
    expect(withoutTime(await again.train(train, validation, budget, { ...o, checkpointDir: killed }))).toEqual(withoutTime(ref));
    expect(await weights(again)).toEqual(await weights(reference));
    for (const g of [reference, stopped, resumed, again]) g.dispose();
  }, 300_000);
});
