import { describe, expect, test } from 'vitest';
import { inflateSync } from 'node:zlib';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, tensor, tidy } from '@transfuse/core';
import {
  batches,
  diffusionLoss,
  conditionalTransferModel,
  crc32,
  encodePng,
  NoiseSchedule,
  trainDiffusion,
  UNet2D,
  UNET_PRESETS,
  unconditionalTransferModel,
  type ImageSet,
} from '@transfuse/models';
import { loadDigits, MNIST_USPS_PRESETS, prepareDigits, runExperiment, runMnistUsps } from '@transfuse/models/node';
import { useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;

function usps(n: number): ImageSet {
  return prepareDigits(loadDigits(DATA, 'usps', 'train'), null, { size: 16, n, seed: 1 });
}

const weights = async (m: { namedParameters(): [string, { data(): Promise<Float32Array | Int32Array> }][] }, prefix: string) =>
  Promise.all(m.namedParameters().filter(([n]) => n.startsWith(prefix)).map(async ([n, p]) => [n, Array.from(await p.data())] as const));

describe('diffusion training', () => {
  test('a tiny U-Net overfits 8 digits: the held-fixed noise-prediction loss falls below 0.3 and halves in 80 steps', async () => {
    const data = usps(8);
    const schedule = new NoiseSchedule();
    const model = new UNet2D({ sampleSize: 16, ...UNET_PRESETS.tiny, numClassEmbeds: 10, seed: 3 });
    // The same images, timesteps and noise before and after: single-batch training losses are too noisy to compare.
    const evalLoss = async () => {
      const loss = noGrad(() =>
        tidy(() => {
          const x0 = tensor(data.images, [8, 1, 16, 16]);
          const t = tensor(Int32Array.from({ length: 8 }, (_, i) => 50 + 100 * i));
          return diffusionLoss(model, schedule, x0, tensor(data.labels!), t, 123);
        }),
      );
      const v = await loss.item();
      loss.dispose();
      return v;
    };
    const before = await evalLoss();
    await trainDiffusion(model, schedule, data, { steps: 80, batchSize: 8, lr: 3e-3, seed: 4, label: null });
    const after = await evalLoss();
    // Measured: 0.96 before, 0.12 after (lavapipe).
    expect(after).toBeLessThan(0.3);
    expect(after).toBeLessThan(before / 2);
    model.dispose();
  }, 300_000); // 47 s on Vulkan and over 120 s on OpenGL while an experiment shared the two cores

  test('transfer keeps the frozen class embedding bit-identical; baseline and transfer see the same batches', async () => {
    const data = usps(40);
    const schedule = new NoiseSchedule();
    const source = new UNet2D({ sampleSize: 16, ...UNET_PRESETS.tiny, numClassEmbeds: 10, seed: 5 });
    const before = await weights(source, 'class_embedding');
    const seen: Int32Array[][] = [[], []];
    for (const [k, mode] of (['finetune', 'fresh-head'] as const).entries()) {
      const target = conditionalTransferModel(source, mode, 6);
      await trainDiffusion(target, schedule, data, { steps: 6, batchSize: 8, lr: 1e-2, seed: 7, label: null, onBatch: (i) => seen[k].push(i) });
      expect(await weights(target, 'class_embedding')).toEqual(before);
      // Everything else moved.
      const moved = await weights(target, 'conv_out');
      const orig = await weights(source, 'conv_out');
      expect(moved).not.toEqual(orig);
      target.dispose();
    }
    expect(seen[0].map((b) => Array.from(b))).toEqual(seen[1].map((b) => Array.from(b)));
    const unconditional = new UNet2D({ sampleSize: 16, ...UNET_PRESETS.tiny, seed: 8 });
    const deep = unconditionalTransferModel(unconditional, 'freeze-deep');
    const frozen = deep.namedParameters().filter(([, p]) => !p.requiresGrad).map(([n]) => n);
    expect(frozen.some((n) => n.startsWith('mid_block.'))).toBe(true);
    expect(frozen.some((n) => n.startsWith('down_blocks.1.'))).toBe(true);
    expect(frozen.some((n) => n.startsWith('conv_in'))).toBe(false);
    expect(() => conditionalTransferModel(unconditional, 'finetune')).toThrow(/not class-conditional/);
  });

  test('seeded batches are reproducible epochs without repeats', () => {
    const set = usps(10);
    const a = batches(set, 4, 9);
    const b = batches(set, 4, 9);
    const rows: number[] = [];
    for (let i = 0; i < 5; i++) {
      const x = a().indices;
      expect(Array.from(x)).toEqual(Array.from(b().indices));
      rows.push(...x);
    }
    expect(new Set(rows.slice(0, 8)).size).toBe(8);
  });
});

describe('outputs', () => {
  test('PNG encoder: valid chunks, CRCs, and the pixels inflate back', () => {
    const pixels = Uint8Array.from({ length: 5 * 3 }, (_, i) => i * 17);
    const png = encodePng(pixels, 5, 3);
    expect(Array.from(png.slice(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const view = new DataView(png.buffer, png.byteOffset);
    let at = 8;
    const chunks: Record<string, Uint8Array> = {};
    while (at < png.length) {
      const len = view.getUint32(at);
      const type = Buffer.from(png.slice(at + 4, at + 8)).toString('latin1');
      const body = png.slice(at + 8, at + 8 + len);
      expect(view.getUint32(at + 8 + len), `${type} CRC`).toBe(crc32(png.slice(at + 4, at + 8 + len)));
      chunks[type] = body;
      at += 12 + len;
    }
    expect(Object.keys(chunks)).toEqual(['IHDR', 'IDAT', 'IEND']);
    const raw = inflateSync(chunks.IDAT);
    for (let y = 0; y < 3; y++) {
      expect(raw[y * 6]).toBe(0);
      expect(Array.from(raw.slice(y * 6 + 1, y * 6 + 6))).toEqual(Array.from(pixels.slice(y * 5, y * 5 + 5)));
    }
    // Known CRC-32 of "IEND".
    expect(crc32(Buffer.from('IEND', 'latin1'))).toBe(0xae426082);
  });
});

describe('experiments (smoke presets, end to end)', () => {
  for (const name of ['mnist-usps-conditional', 'mnist-usps-digit3']) {
    test(name, async () => {
      const out = mkdtempSync(join(tmpdir(), `transfuse-${name}-`));
      const md = await runExperiment(name, { preset: 'smoke', dataDir: DATA, out, log: () => {} });
      expect(md).toMatch(/\| model \| n_s \| transfer W1 \|/);
      const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
      expect(results.floor).toBeGreaterThan(0);
      for (const family of ['diffusion', 'flow']) {
        const fr = results.families[family];
        expect(fr.baseline[0].w1, family).toBeGreaterThan(0);
        expect(fr.transfer['200'][0].w1, family).toBeGreaterThan(0);
        expect(fr.variant['200'][0].w1, family).toBeGreaterThan(0);
        expect(existsSync(join(out, `samples-${family}-baseline-seed0.png`))).toBe(true);
      }
      // Flows are also scored by likelihood: 8-bit bits/dim are positive and finite.
      for (const e of [results.families.flow.baseline[0], results.families.flow.transfer['200'][0]]) expect(e.bitsPerDim).toBeGreaterThan(0);
      expect(results.families.diffusion.baseline[0].bitsPerDim).toBeUndefined();
      expect(md).toMatch(/Held-out bits\/dim, flow/);
      for (const f of ['results.md', 'w1.svg', 'usps-split.json']) expect(existsSync(join(out, f)), f).toBe(true);
      // Resumable: a second run recomputes nothing and gives the same table.
      const again = await runExperiment(name, { preset: 'smoke', dataDir: DATA, out, log: () => {} });
      expect(again).toBe(md);
      // A run stopped between the cells of one n_s loads the saved source model, not pre-training
      // it again, and the redone cell scores what it scored from the freshly trained source.
      for (const family of ['diffusion', 'flow']) rmSync(join(out, 'cells', `${family}-variant-ns200-seed0.json`));
      const logs: string[] = [];
      await runExperiment(name, { preset: 'smoke', dataDir: DATA, out, log: (m) => logs.push(m) });
      const redone = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
      for (const family of ['diffusion', 'flow']) {
        expect(logs.some((m) => m.startsWith(`[${family}-source-ns200-seed0] loaded from`)), logs.join('\n')).toBe(true);
        expect(redone.families[family].variant['200'][0].w1, family).toBeCloseTo(results.families[family].variant['200'][0].w1, 4);
      }
    });
  }

  test('--ns and --families replace the preset, are recorded in config.json, and are checked', async () => {
    const out = mkdtempSync(join(tmpdir(), 'transfuse-overrides-'));
    const run = (o: Partial<Parameters<typeof runExperiment>[1]>, name = 'mnist-usps-digit3') =>
      runExperiment(name, { preset: 'smoke', dataDir: DATA, out, log: () => {}, ...o });
    const md = await run({ ns: [50], families: ['diffusion'] });
    expect(md).toMatch(/preset smoke, n_s 50; diffusion/);
    expect(md).toMatch(/\| diffusion \| 50 \|/);
    expect(md).not.toMatch(/\| flow \|/);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).config;
    expect(config.nsList).toEqual([50]);
    expect(config.families).toEqual(['diffusion']);
    // The plain preset cannot reuse that folder: its cells would mix with the changed run's.
    await expect(run({})).rejects.toThrow(/holds results of a different run/);
    await expect(run({ ns: [0] })).rejects.toThrow(/--ns must list positive whole numbers, got 0/);
    await expect(run({ families: ['gan' as never] })).rejects.toThrow(/--families takes diffusion and\/or flow, got 'gan'/);
    await expect(run({ ns: [50] }, 'sec-simulation')).rejects.toThrow(/apply to the mnist-usps experiments, not 'sec-simulation'/);
  });

  test('a run with no n_s trains and scores only the baselines, and writes no n_s plot', async () => {
    const out = mkdtempSync(join(tmpdir(), 'transfuse-baseline-only-'));
    const preset = { ...MNIST_USPS_PRESETS.smoke, nsList: [], families: ['diffusion' as const], variant: false };
    const r = await runMnistUsps({ preset, presetName: 'smoke', conditional: false, dataDir: DATA, out, log: () => {} });
    expect(r.families.diffusion!.baseline[0].w1).toBeGreaterThan(0);
    expect(r.families.diffusion!.transfer).toEqual({});
    expect(existsSync(join(out, 'results.md'))).toBe(true);
    expect(existsSync(join(out, 'w1.svg'))).toBe(false);
  });

  test('mnist-usps-digit3: every n_s past the 6,131 MNIST threes runs once, labelled with the size used', async () => {
    const out = mkdtempSync(join(tmpdir(), 'transfuse-digit3-sizes-'));
    const logs: string[] = [];
    const preset = { ...MNIST_USPS_PRESETS.smoke, nsList: [200, 7000, 60000], families: ['diffusion' as const], variant: false };
    const r = await runMnistUsps({ preset, presetName: 'smoke', conditional: false, dataDir: DATA, out, log: (m) => logs.push(m) });
    expect(r.sourceSizes).toEqual({ 200: 200, 7000: 6131, 60000: 6131 });
    expect(Object.keys(r.families.diffusion!.transfer).sort()).toEqual(['200', '7000']);
    expect(logs.some((m) => m.includes('n_s=60000') && m.includes('skipped') && m.includes('n_s=7000')), logs.join('\n')).toBe(true);
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/\| diffusion \| 7000 \(all 6131\) \|/);
  });
});
