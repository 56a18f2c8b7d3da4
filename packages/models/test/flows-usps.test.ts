/**
 * Flows on real digits and the transfer procedures: bits/dim of a small flow trained briefly on
 * USPS against a diagonal Gaussian fitted in closed form (float64) to the same dequantized,
 * logit-transformed data; frozen parts stay bit-identical through fine-tuning.
 */
import { describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flowCli } from '../src/flows/cli.js';
import { loadDigits, prepareDigits } from '../src/data/digits.js';
import { tensor } from '@transfuse/core';
import { ActNorm } from '../src/flows/transforms.js';
import {
  Flow,
  evalBitsPerDim,
  imageFlowData,
  sampleFlow,
  trainFlow,
  type FlowData,
} from '../src/flows/index.js';
import { conditionalFlowTransfer, unconditionalFlowTransfer } from '../src/transfer/flows.js';
import { seededRandom, useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;
const ALPHA = 0.05;

/** Logit-space values of dequantized images and the per-row log-det of data (0,1) → logit space. */
function logitSpace(images: Float32Array, n: number, d: number, seed: number): { z: Float64Array; logDet: Float64Array } {
  const r = seededRandom(seed);
  const z = new Float64Array(n * d);
  const logDet = new Float64Array(n);
  for (let i = 0; i < n * d; i++) {
    const level = Math.min(255, Math.max(0, Math.round(((images[i] + 1) / 2) * 255)));
    const s = ALPHA + (1 - 2 * ALPHA) * ((level + r()) / 256);
    z[i] = Math.log(s) - Math.log(1 - s);
    logDet[Math.floor(i / d)] += Math.log(1 - 2 * ALPHA) - Math.log(s) - Math.log(1 - s);
  }
  return { z, logDet };
}

/** Bits/dim of the held-out digits under a diagonal Gaussian fitted by maximum likelihood to the training digits' logit values. */
function diagonalGaussianBitsPerDim(train: FlowData, test: FlowData): number {
  const d = train.dim;
  const a = logitSpace(train.x, train.n, d, 1);
  const mean = new Float64Array(d);
  const v = new Float64Array(d);
  for (let i = 0; i < train.n; i++) for (let j = 0; j < d; j++) mean[j] += a.z[i * d + j] / train.n;
  for (let i = 0; i < train.n; i++) for (let j = 0; j < d; j++) v[j] += (a.z[i * d + j] - mean[j]) ** 2 / train.n;
  const b = logitSpace(test.x, test.n, d, 2);
  let nll = 0;
  for (let i = 0; i < test.n; i++) {
    let lp = b.logDet[i];
    for (let j = 0; j < d; j++) lp += -0.5 * (b.z[i * d + j] - mean[j]) ** 2 / v[j] - 0.5 * Math.log(2 * Math.PI * v[j]);
    nll -= lp / test.n;
  }
  return (nll / d + Math.log(256)) / Math.LN2;
}

const weights = async (m: Flow, keep: (name: string) => boolean) =>
  new Map(await Promise.all(m.namedParameters().filter(([n]) => keep(n)).map(async ([n, p]) => [n, Array.from(await p.data())] as const)));

describe('flows on USPS digits', () => {
  test('a small flow trained briefly beats a fitted diagonal Gaussian in held-out bits/dim', async () => {
    const raw = loadDigits(DATA, 'usps', 'train');
    const all = prepareDigits(raw, null, { size: 16, n: 1500, seed: 3 });
    const d = 256;
    const train = imageFlowData({ ...all, n: 1000, images: all.images.subarray(0, 1000 * d), labels: null });
    const test = imageFlowData({ ...all, n: 500, images: all.images.subarray(1000 * d), labels: null });
    const flow = new Flow({ dim: d, coupling: 'affine', layers: 4, hidden: [64], permutation: 'random', actnorm: true, logitAlpha: ALPHA, seed: 4 });
    await trainFlow(flow, train, { steps: 150, batchSize: 64, lr: 2e-3, seed: 5, label: null, warmup: 10 });
    const flowBpd = (await evalBitsPerDim(flow, test, { seed: 6 })).bitsPerDim;
    const gaussBpd = diagonalGaussianBitsPerDim(train, test);
    process.stderr.write(`USPS held-out bits/dim: flow ${flowBpd.toFixed(3)}, diagonal Gaussian ${gaussBpd.toFixed(3)}\n`);
    expect(Number.isFinite(flowBpd)).toBe(true);
    expect(flowBpd).toBeLessThan(gaussBpd - 0.5);
    flow.dispose();
  });
});

describe('sampleFlow', () => {
  test('images: (0, 1) samples of a flow trained on imageFlowData come back as [-1, 1] images, clamped', async () => {
    const flow = new Flow({ dim: 4, coupling: 'affine', layers: 2, hidden: [8], base: 'diagonal', seed: 30 });
    const raw = await sampleFlow(flow, 500, { seed: 31 });
    const images = await sampleFlow(flow, 500, { seed: 31, images: true });
    // Roughly N(0, 1) samples: some inside (0, 1), some outside, so both sides of the clamp run.
    expect(raw.some((v) => v < 0) && raw.some((v) => v > 1) && raw.some((v) => v > 0 && v < 1)).toBe(true);
    expect(Array.from(images)).toEqual(Array.from(raw, (v) => Math.fround(Math.min(1, Math.max(-1, Math.fround(v * 2 - 1))))));
    flow.dispose();
  });
});

describe('flow transfer procedures', () => {
  const rng = seededRandom(7);
  const n = 200;
  const x = Float32Array.from({ length: 2 * n }, () => rng(-2, 2));
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  const data: FlowData = { x, n, dim: 2, labels };
  const opts = { steps: 15, batchSize: 32, lr: 1e-2, label: null } as const;

  test('conditional: condition_embedding stays bit-identical to the source through fine-tuning; the rest moves', async () => {
    const source = new Flow({ dim: 2, coupling: 'affine', layers: 3, hidden: [16], condition: { numClasses: 4, embedding: 3 }, seed: 8 });
    await trainFlow(source, data, { ...opts, seed: 9 });
    const h = await weights(source, (k) => k.startsWith('condition_embedding'));
    for (const mode of ['finetune', 'fresh-head'] as const) {
      const target = conditionalFlowTransfer(source, mode, 10);
      const before = await weights(target, (k) => !k.startsWith('condition_embedding'));
      await trainFlow(target, { ...data, x: x.map((v) => v * 0.5 + 1) }, { ...opts, seed: 11 });
      expect(await weights(target, (k) => k.startsWith('condition_embedding')), mode).toEqual(h);
      const after = await weights(target, (k) => !k.startsWith('condition_embedding'));
      expect([...after.keys()].filter((k) => JSON.stringify(after.get(k)) !== JSON.stringify(before.get(k))).length, mode).toBeGreaterThan(0);
      target.dispose();
    }
    source.dispose();
  });

  test('finetune copies compute the source model exactly (random permutations kept) and re-initialise ActNorm on the target', async () => {
    const d = 6;
    const r = seededRandom(21);
    const xs = Float32Array.from({ length: 64 * d }, () => r(-1, 3));
    const labels = Int32Array.from({ length: 64 }, (_, i) => i % 4);
    const cfg = { dim: d, coupling: 'affine', layers: 4, hidden: [8], permutation: 'random', actnorm: true } as const;
    const cases = [
      { source: new Flow({ ...cfg, condition: { numClasses: 4, embedding: 3 }, seed: 22 }), copy: (f: Flow) => conditionalFlowTransfer(f, 'finetune', 99), labels },
      { source: new Flow({ ...cfg, base: 'diagonal', seed: 23 }), copy: (f: Flow) => unconditionalFlowTransfer(f, 'finetune', 98), labels: null },
    ];
    for (const c of cases) {
      await trainFlow(c.source, { x: xs, n: 64, dim: d, labels: c.labels }, { steps: 5, batchSize: 16, lr: 1e-2, seed: 24, label: null });
      const target = c.copy(c.source);
      const logProb = async (f: Flow) => f.eval().logProb(tensor(xs, [64, d]), c.labels ? { labels: tensor(c.labels) } : undefined).data();
      // Eval mode uses the copied ActNorm values: the copy is the source, to the last bit.
      expect(Array.from(await logProb(target))).toEqual(Array.from(await logProb(c.source)));
      const actnorms = (f: Flow) => f.namedModules().filter(([, m]) => m instanceof ActNorm).map(([, m]) => (m as ActNorm).initialized);
      expect(actnorms(c.source).every(Boolean)).toBe(true);
      expect(actnorms(target).some(Boolean)).toBe(false);
      // The first training batch sets them, as in a fresh flow: the first ActNorm whitens that batch.
      const shifted = xs.map((v) => v * 3 + 5);
      await trainFlow(target, { x: shifted, n: 64, dim: d, labels: c.labels }, { steps: 1, batchSize: 64, lr: 1e-9, seed: 25, label: null });
      expect(actnorms(target).every(Boolean)).toBe(true);
      const first = target.namedModules().find(([, m]) => m instanceof ActNorm)![1] as ActNorm;
      const bias = await first.bias.data();
      for (let j = 0; j < d; j++) {
        let m = 0;
        for (let i = 0; i < 64; i++) m += shifted[i * d + j] / 64;
        expect(bias[j]).toBeCloseTo(-m, 2);
      }
      target.dispose();
      c.source.dispose();
    }
  });

  test("unconditional: the source's learned base (law of U) stays bit-identical; g_t is fitted from g_s or afresh", async () => {
    const source = new Flow({ dim: 2, coupling: 'affine', layers: 2, hidden: [16], base: { layers: 2, hidden: [16] }, seed: 12 });
    const unlabeled = { ...data, labels: null };
    await trainFlow(source, unlabeled, { ...opts, seed: 13 });
    const base = await weights(source, (k) => k.startsWith('base.'));
    const g = await weights(source, (k) => k.startsWith('transforms.'));
    const fresh = unconditionalFlowTransfer(source, 'fresh', 14);
    const finetune = unconditionalFlowTransfer(source, 'finetune', 14);
    expect(await weights(finetune, (k) => k.startsWith('transforms.'))).toEqual(g);
    expect(await weights(fresh, (k) => k.startsWith('transforms.'))).not.toEqual(g);
    for (const target of [fresh, finetune]) {
      await trainFlow(target, { ...unlabeled, x: x.map((v) => v * 1.5) }, { ...opts, seed: 15 });
      expect(await weights(target, (k) => k.startsWith('base.'))).toEqual(base);
      target.dispose();
    }
    expect(() => unconditionalFlowTransfer(new Flow({ dim: 2, coupling: 'affine', layers: 1, hidden: [4] }), 'finetune')).toThrow(/base has no parameters/);
    source.dispose();
  });
});

describe('flow CLI', () => {
  test('train writes checkpoint, flow.json, log.json and a per-class grid; sample and eval reload it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flow-cli-'));
    const msgs: string[] = [];
    const log = (m: string) => msgs.push(m);
    await flowCli('train', { data: DATA, dataset: 'usps', conditional: true, steps: '4', n: '100', 'eval-n': '50', batch: '16', out }, log);
    for (const f of ['model.safetensors', 'flow.json', 'log.json', 'samples.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const saved = JSON.parse(readFileSync(join(out, 'log.json'), 'utf8')) as { testBitsPerDim: number; trainBitsPerDim: number; losses: [number, number][] };
    expect(Number.isFinite(saved.testBitsPerDim) && Number.isFinite(saved.trainBitsPerDim)).toBe(true);
    expect(saved.losses.at(-1)![0]).toBe(4);
    await flowCli('sample', { checkpoint: out, n: '20', png: join(out, 'again.png') }, log);
    expect(existsSync(join(out, 'again.png'))).toBe(true);
    expect(msgs.at(-1)).toMatch(/one row per class/);
    await flowCli('eval', { checkpoint: out, data: DATA, n: '30' }, log);
    await expect(flowCli('train', { data: DATA, preset: 'realnvp-cond', steps: '1', out }, log)).rejects.toThrow(/is conditional; pass --conditional/);
  });
});
