/**
 * The generic transfer experiment on a tiny synthetic source and target (8x8 images, 2 classes):
 * every arm runs, the compute-matched baseline's cap is the transfer arm's total steps, steps
 * and images are recorded, the summary's paired differences match the cells, runs resume, and
 * folders of the fixed-step protocol are refused. Also: early stopping of trainDiffusion keeps
 * the weights of its best validation loss.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deriveSeed } from '@transfuse/core';
import { useGpu } from '../../core/test/helpers.js';
import { createRng } from '../src/data/prng.js';
import { NoiseSchedule } from '../src/diffusion/schedule.js';
import { trainDiffusion, validationLoss, type ImageSet } from '../src/diffusion/train.js';
import { UNet2D } from '../src/diffusion/unet.js';
import { runTransferExperiment, type TransferProtocol } from '../src/experiments/transfer-experiment.js';
import { parseTransferArgs } from '../src/experiments/transfer-cli.js';
import { MNIST_USPS_PRESETS } from '../src/experiments/mnist-usps.js';
import { checkInterval, validationChecks } from '../src/experiments/families.js';
import { winsBeyondSpread } from '../src/experiments/transfer-summary.js';
import type { DigitImages } from '../src/data/mnist.js';

useGpu({ poison: false });

/** n images of 8x8 in [0, 1]: class 0 a bright left half, class 1 a bright right half, shifted by `shift` rows, plus noise. */
function synthetic(n: number, shift: number, seed: number): DigitImages {
  const rng = createRng(seed);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  const images = new Float32Array(n * 64);
  labels.forEach((c, i) => {
    for (let p = 0; p < 64; p++) {
      const [r, col] = [Math.floor(p / 8), p % 8];
      const on = (c === 0 ? col < 4 : col >= 4) && r >= shift;
      images[i * 64 + p] = Math.min(1, Math.max(0, (on ? 0.8 : 0.1) + 0.1 * rng.normal()));
    }
  });
  return { images, labels, n, height: 8, width: 8 };
}

const budget = { cap: 6, batchSize: 8, lr: 2e-3, validateEvery: 2, patience: 100 };
const protocol: TransferProtocol = {
  size: 8,
  conditional: true,
  seeds: [0, 1],
  nsList: [20, 400],
  ntList: [12, 'all'],
  evalN: 10,
  validationFraction: { source: 0.1, target: 0.25 },
  maxValidation: 8,
  diffusion: { unet: 'tiny', samplerSteps: 2, arms: ['transfer', 'baseline', 'matched'], source: { ...budget, cap: 8, patience: 1 }, target: budget },
  classifier: { steps: 20, batchSize: 16, lr: 1e-2 },
};

describe('runTransferExperiment (synthetic)', () => {
  /** The first test's folder: the next takes its source models. */
  let first = '';

  it('runs every arm, matches compute, records budgets, summarizes by seed, resumes and refuses old folders', async () => {
    const out = (first = mkdtempSync(join(tmpdir(), 'transfuse-transfer-')));
    const source = synthetic(60, 0, 1);
    const target = synthetic(40, 2, 2);
    const run = (log: (m: string) => void = () => {}) => runTransferExperiment({ name: 'synthetic', presetName: 'test', protocol, source, target, out, log });
    const r = await run();
    // n_s = 400 is past the source's 60 images: one cell stands for "all 60".
    expect(r.sourceSizes).toEqual({ 20: 20, 400: 60 });
    // 2 seeds x 2 n_t x (baseline + 2 n_s x (transfer + matched)) = 20 cells.
    expect(r.cells.length).toBe(20);
    expect(r.targetTrain + r.heldOut).toBe(40);
    for (const c of r.cells) {
      expect(c.w1).toBeGreaterThan(0);
      expect(c.target.images).toBe(c.target.steps * 8);
      expect(c.target.curve.length).toBeGreaterThan(0);
      expect(c.classAccuracy).toBeGreaterThanOrEqual(0);
      expect(Object.keys(c.perClass).sort()).toEqual(['0', '1']);
    }
    for (const t of r.cells.filter((c) => c.arm === 'transfer')) {
      // The source stops on validation (patience 1) or at its cap of 8; the transfer's total counts it.
      expect(t.source!.steps).toBeLessThanOrEqual(8);
      expect(t.totalSteps).toBe(t.source!.steps + t.target.steps);
      // Target patience 100: nothing stops early, so the matched arm runs its whole cap.
      const matched = r.cells.find((c) => c.arm === 'matched' && c.seed === t.seed && c.nt === t.nt && c.ns === t.ns)!;
      expect(matched.target.steps).toBe(t.totalSteps);
      expect(matched.totalSteps).toBe(t.totalSteps);
    }
    // n_t = 12 of the 28 training images: 9 train + 3 validate; 'all' is every one.
    expect(new Set(r.cells.map((c) => `${c.nt}:${c.ntUsed}`))).toEqual(new Set(['12:12', `all:${r.targetTrain}`]));
    // Paired differences: transfer minus baseline per seed, by hand from the cells.
    const row = r.summary.rows.find((x) => x.nt === '12' && x.ns === 20)!;
    const cellOf = (arm: string, seed: number) => r.cells.find((c) => c.arm === arm && c.seed === seed && c.nt === '12' && (arm === 'baseline' || c.ns === 20))!;
    const w = (arm: string, seed: number) => cellOf(arm, seed).w1;
    const d = [0, 1].map((s) => w('transfer', s) - w('baseline', s));
    expect(row.vsBaseline!.mean).toBeCloseTo((d[0] + d[1]) / 2, 12);
    expect(row.vsBaseline!.sd).toBeCloseTo(Math.abs(d[0] - d[1]) / Math.SQRT2, 12);
    expect(row.vsMatched!.differences[1]).toBeCloseTo(w('transfer', 1) - w('matched', 1), 12);
    // Class fidelity is paired the same way.
    const acc = (arm: string, seed: number) => cellOf(arm, seed).classAccuracy!;
    [0, 1].forEach((s) => expect(row.accVsBaseline!.differences[s]).toBeCloseTo(acc('transfer', s) - acc('baseline', s), 12));
    [0, 1].forEach((s) => expect(row.accVsMatched!.differences[s]).toBeCloseTo(acc('transfer', s) - acc('matched', s), 12));
    for (const f of ['results.md', 'results.json', 'w1.svg', 'gain.svg', 'validation.svg', 'samples/diffusion-transfer-nt12-ns20-seed0.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/\| diffusion \| 12 \| 20 \|/);
    expect(md).toMatch(/Label-matched real-vs-real floor/);
    expect(md).toContain('Class fidelity, paired the same way (percentage points; higher is better):');
    expect(md).toMatch(/\| diffusion \| 12 \| 20 \| [+-]\d+\.\d ± \d+\.\d \((lower|higher|within spread)\) \|/);
    // Caps of 6-8 steps with patience 100 end runs that are still improving: the report says so.
    expect(md).toMatch(/Not converged: \d+ run\(s\) ended at their cap while the validation loss could still improve/);
    // A claim names its seeds; two are a first reading, not a result.
    const wins = winsBeyondSpread(r.summary.rows);
    for (const w of wins) expect(md).toContain(`${w.family} n_t=${w.nt} n_s=${w.ns} (2 seeds only: a first reading, 3 are needed for a claim)`);
    if (!wins.length) expect(md).toContain('beyond seed spread in no cell');
    // Resumable: nothing is recomputed, the table is the same.
    const logs: string[] = [];
    await run((m) => logs.push(m));
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toBe(md);
    expect(logs.filter((m) => m.endsWith('s') && m.includes('finished in'))).toEqual([]);
    // A folder written by the fixed-step protocol is refused, naming it.
    const old = mkdtempSync(join(tmpdir(), 'transfuse-old-'));
    writeFileSync(join(old, 'config.json'), JSON.stringify({ experiment: 'synthetic', config: { sourceSteps: 12 } }));
    await expect(runTransferExperiment({ name: 'synthetic', presetName: 'test', protocol, source, target, out: old })).rejects.toThrow(/holds results of the fixed-step protocol or of another experiment \(.*config\.json has no protocol version 2\)/);
  }, 600_000);

  it('checks target runs from step 0 and per epochs of a small split when the budget asks, with the source models of another folder', async () => {
    const out = mkdtempSync(join(tmpdir(), 'transfuse-dense-'));
    const dense: TransferProtocol = { ...protocol, seeds: [0], nsList: [20], ntList: [12], diffusion: { ...protocol.diffusion!, target: { ...budget, validateEvery: 4, validateEpochs: 1, validateAtStart: true, emaDecay: 0.9 } } };
    const logs: string[] = [];
    const run = (p: TransferProtocol, to: string) => runTransferExperiment({ name: 'synthetic', presetName: 'test', protocol: p, source: synthetic(60, 0, 1), target: synthetic(40, 2, 2), out: to, sourcesFrom: first, log: (m) => logs.push(m) });
    const r = await run(dense, out);
    // The first test's folder trained this source under the same source settings: copied, not trained.
    const id = 'diffusion-source-ns20-seed0';
    expect(logs).toContain(`[${id}] copied from ${first}`);
    expect(readFileSync(join(out, 'cells', `${id}.json`), 'utf8')).toBe(readFileSync(join(first, 'cells', `${id}.json`), 'utf8'));
    expect(readFileSync(join(out, 'models', id, 'model.safetensors')).equals(readFileSync(join(first, 'models', id, 'model.safetensors')))).toBe(true);
    // Another source budget would train other sources: refused before anything runs, naming the difference.
    const other = { ...dense, diffusion: { ...dense.diffusion!, source: { ...dense.diffusion!.source, cap: 9 } } };
    await expect(run(other, mkdtempSync(join(tmpdir(), 'transfuse-other-')))).rejects.toThrow(/--sources-from .*: the diffusion source settings differ, so its source models are not the ones this run would train/);
    expect(r.cells.map((c) => c.arm).sort()).toEqual(['baseline', 'matched', 'transfer']);
    for (const c of r.cells) {
      // n_t = 12: 9 training images, batch 8: one pass is 2 steps (rounded up), fewer than validateEvery 4.
      expect(c.target.validateEvery).toBe(2);
      expect(c.target.curve.map(([s]) => s)).toEqual([0, ...Array.from({ length: c.target.steps / 2 }, (_, i) => 2 * (i + 1))]);
      if (c.source) {
        expect(c.source.validateEvery).toBeUndefined();
        expect(c.source.curve[0][0]).toBe(2);
      }
    }
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).config.diffusion.target).toMatchObject({ validateEpochs: 1, validateAtStart: true, emaDecay: 0.9 });
  }, 300_000);

  it('parses the transfer command flags and names the flag at fault', () => {
    const p = parseTransferArgs(['--source', 's', '--target', 't', '--preset', 'smoke', '--nt', '100,all', '--seeds', '0,1,2', '--arms', 'transfer,baseline,matched', '--families', 'diffusion']);
    expect(p.protocol.ntList).toEqual([100, 'all']);
    expect(p.protocol.seeds).toEqual([0, 1, 2]);
    expect(p.protocol.flow).toBeUndefined();
    expect(p.protocol.diffusion!.arms).toEqual(['transfer', 'baseline', 'matched']);
    const bad = (extra: string[]) => () => parseTransferArgs(['--source', 's', '--target', 't', ...extra]);
    // The caps replace the preset's for every family, and leave the preset itself alone.
    const capped = parseTransferArgs(['--source', 's', '--target', 't', '--preset', 'cpu', '--source-cap', '5000', '--target-cap', '900']).protocol;
    for (const f of ['diffusion', 'flow'] as const) expect([capped[f]!.source.cap, capped[f]!.target.cap]).toEqual([5000, 900]);
    expect(MNIST_USPS_PRESETS.cpu.diffusion!.source.cap).toBe(2000);
    expect(capped.diffusion!.source.patience).toBe(MNIST_USPS_PRESETS.cpu.diffusion!.source.patience);
    // Dense checks from step 0 for the target runs only; the sources keep the preset's checks.
    const dense = parseTransferArgs(['--source', 's', '--target', 't', '--preset', 'cpu', '--target-check-epochs', '4']).protocol;
    for (const f of ['diffusion', 'flow'] as const) {
      expect(dense[f]!.target).toEqual({ ...MNIST_USPS_PRESETS.cpu[f]!.target, validateEpochs: 4, validateAtStart: true });
      expect(dense[f]!.source).toEqual(MNIST_USPS_PRESETS.cpu[f]!.source);
    }
    expect(bad(['--target-check-epochs', '0'])).toThrow("--target-check-epochs takes whole numbers of at least 1, got '0'");
    // An averaged target: the target budgets only.
    const averaged = parseTransferArgs(['--source', 's', '--target', 't', '--preset', 'cpu', '--target-ema', '0.999']).protocol;
    for (const f of ['diffusion', 'flow'] as const) expect([averaged[f]!.target.emaDecay, averaged[f]!.source.emaDecay]).toEqual([0.999, undefined]);
    expect(bad(['--target-ema', '1'])).toThrow("--target-ema takes a decay between 0 and 1 (exclusive), e.g. 0.999; got '1'");
    expect(bad(['--target-ema', 'slow'])).toThrow("--target-ema takes a decay between 0 and 1 (exclusive), e.g. 0.999; got 'slow'");
    const slower = parseTransferArgs(['--source', 's', '--target', 't', '--preset', 'cpu', '--target-lr', '1e-4']).protocol;
    for (const f of ['diffusion', 'flow'] as const) expect([slower[f]!.target.lr, slower[f]!.source.lr]).toEqual([1e-4, MNIST_USPS_PRESETS.cpu[f]!.source.lr]);
    expect(bad(['--target-lr', '0'])).toThrow("--target-lr takes a learning rate above 0 and at most 1, e.g. 1e-4; got '0'");
    // The flows' ActNorm init: the flow target budget only, and an error where no flow runs.
    const prior = parseTransferArgs(['--source', 's', '--target', 't', '--preset', 'cpu', '--target-actnorm-prior', '256']).protocol;
    expect([prior.flow!.target.actnormPrior, prior.flow!.source.actnormPrior, prior.diffusion!.target.actnormPrior]).toEqual([256, undefined, undefined]);
    expect(bad(['--target-actnorm-prior', 'many'])).toThrow("--target-actnorm-prior takes a number of images >= 0, e.g. 256; got 'many'");
    expect(bad(['--target-actnorm-prior', '256'])).toThrow("--target-actnorm-prior sets the flows' ActNorm init; this preset runs no flows");
    expect(bad(['--preset', 'cpu', '--families', 'diffusion', '--target-actnorm-prior', '256'])).toThrow("--target-actnorm-prior sets the flows' ActNorm init; --families diffusion runs no flows");
    expect(bad(['--nt', '100,lots'])).toThrow("--nt takes whole numbers of at least 2, got 'lots'");
    expect(bad(['--arms', 'transfer,magic'])).toThrow("--arms takes distinct names of transfer, variant, baseline, matched, got 'transfer,magic'");
    expect(bad(['--arms', 'baseline,matched'])).toThrow("--arms: 'matched' needs 'transfer' or 'variant'");
    expect(bad(['--pixel-range', '255,0'])).toThrow("--pixel-range takes LOW,HIGH with LOW < HIGH, e.g. 0,255; got '255,0'");
    expect(bad(['--families', 'flow'])).toThrow("--families: preset 'demo' has no flow settings (it runs diffusion)");
    expect(bad(['--preset', 'huge'])).toThrow("--preset takes smoke, demo, cpu, paper, got 'huge'");
    expect(bad(['--source-cap', '0'])).toThrow("--source-cap takes whole numbers of at least 1, got '0'");
    expect(bad(['--target-cap', 'many'])).toThrow("--target-cap takes whole numbers of at least 1, got 'many'");
    expect(() => parseTransferArgs(['--target', 't'])).toThrow('--source DIR|FILE is required');
  });
});

describe('trainDiffusion early stopping', () => {
  it('validationLoss is deterministic, and training keeps the weights of the best measurement', async () => {
    const src = synthetic(24, 0, 3);
    const set: ImageSet = { images: src.images.map((v) => 2 * v - 1), labels: src.labels, n: 24, channels: 1, height: 8, width: 8 };
    const validation: ImageSet = { ...set, images: set.images.subarray(0, 8 * 64), labels: set.labels!.subarray(0, 8), n: 8 };
    const model = new UNet2D({ sampleSize: 8, blockOutChannels: [16, 32], layersPerBlock: 1, normNumGroups: 8, numClassEmbeds: 2, seed: 4 });
    const schedule = new NoiseSchedule();
    const a = await validationLoss(model, schedule, validation, { seed: 5 });
    expect(await validationLoss(model, schedule, validation, { seed: 5 })).toBe(a);
    // lr 0.05 makes the loss jump around, so the last step is rarely the best one.
    const r = await trainDiffusion(model, schedule, set, { steps: 12, batchSize: 8, lr: 5e-2, seed: 6, label: null, validation, validateEvery: 2, patience: 3 });
    expect(r.validation!.history.length).toBeGreaterThan(0);
    expect(r.steps).toBe(r.validation!.history.at(-1)![0]);
    const best = Math.min(...r.validation!.history.map(([, v]) => v));
    expect(r.validation!.best).toBe(best);
    // The same measurement on the restored weights gives the best loss back (same seeds, same weights).
    model.eval();
    // trainDiffusion measures with seed deriveSeed(seed, 3).
    expect(await validationLoss(model, schedule, validation, { seed: deriveSeed(6, 3) })).toBeCloseTo(best, 5);

    // With a check at step 0, the starting weights are a candidate: lr 0 never moves them, so the
    // first check is the best (ties keep the earlier), training stops `patience` checks later, and
    // the step-0 loss is the one measured on the model before training.
    const before = await validationLoss(model, schedule, validation, { seed: deriveSeed(7, 3) });
    const still = await trainDiffusion(model, schedule, set, { steps: 12, batchSize: 8, lr: 0, seed: 7, label: null, validation, validateEvery: 2, patience: 3, validateAtStart: true });
    expect(still.validation!.history.map(([s]) => s)).toEqual([0, 2, 4, 6]);
    expect(still.validation!.history[0][1]).toBe(before);
    expect([still.validation!.bestStep, still.steps]).toEqual([0, 6]);
    model.dispose();
  });

  it('with an EMA, checks and keeps the averaged weights: those of a run without checks stopped at the kept step', async () => {
    const src = synthetic(24, 0, 3);
    const set: ImageSet = { images: src.images.map((v) => 2 * v - 1), labels: src.labels, n: 24, channels: 1, height: 8, width: 8 };
    const validation: ImageSet = { ...set, images: set.images.subarray(0, 8 * 64), labels: set.labels!.subarray(0, 8), n: 8 };
    const make = () => new UNet2D({ sampleSize: 8, blockOutChannels: [16, 32], layersPerBlock: 1, normNumGroups: 8, numClassEmbeds: 2, seed: 4 });
    const schedule = new NoiseSchedule();
    const weights = (m: UNet2D) => Promise.all(m.parameters().map((p) => p.data()));
    // A constant learning rate (no warmup or decay), so a shorter run follows the same trajectory.
    const settings = { batchSize: 8, lr: 5e-2, seed: 8, label: null, emaDecay: 0.9 };
    const model = make();
    const r = await trainDiffusion(model, schedule, set, { ...settings, steps: 12, validation, validateEvery: 2 });
    r.ema!.dispose();
    const v = r.validation!;
    const reference = make();
    const plain = await trainDiffusion(reference, schedule, set, { ...settings, steps: v.bestStep });
    reference.eval();
    const raw = await validationLoss(reference, schedule, validation, { seed: deriveSeed(8, 3) });
    plain.ema!.copyTo(reference);
    plain.ema!.dispose();
    const averaged = await validationLoss(reference, schedule, validation, { seed: deriveSeed(8, 3) });
    // The check at the kept step measured the average, not the raw weights (lr 0.05 keeps them apart).
    expect(Math.abs(v.best - averaged)).toBeLessThan(1e-6);
    expect(Math.abs(raw - averaged)).toBeGreaterThan(1e-4);
    // The model ends holding that average, bit for bit (the checks change no random stream).
    const [kept, expected] = [await weights(model), await weights(reference)];
    kept.forEach((k, i) => expect(k, `parameter ${i}`).toEqual(expected[i]));
    model.dispose();
    reference.dispose();
  });
});

describe('checkInterval', () => {
  it('checks at least every validateEpochs passes over the training split, never less often than validateEvery', () => {
    const b = { cap: 1500, batchSize: 32, lr: 3e-3, validateEvery: 100, patience: 5 };
    expect(checkInterval(b, 80)).toBe(100); // no validateEpochs: the preset's interval
    expect(checkInterval({ ...b, validateEpochs: 4 }, 80)).toBe(10); // 4 x 80 / 32
    expect(checkInterval({ ...b, validateEpochs: 4 }, 81)).toBe(11); // rounded up
    expect(checkInterval({ ...b, validateEpochs: 4 }, 4082)).toBe(100); // a large split: validateEvery
    expect(checkInterval({ ...b, validateEpochs: 1 }, 3)).toBe(1);
  });

  it('keeps the patience in steps: denser checks choose the kept step more finely, they do not stop a run sooner', () => {
    const b = { cap: 1500, batchSize: 32, lr: 3e-3, validateEvery: 100, patience: 5 };
    expect(validationChecks(b, 80)).toEqual({ validateEvery: 100, patience: 5 });
    expect(validationChecks({ ...b, validateEpochs: 4, validateAtStart: true }, 80)).toEqual({ validateEvery: 10, patience: 50, validateAtStart: true }); // 500 steps
    expect(validationChecks({ ...b, validateEpochs: 4 }, 81)).toEqual({ validateEvery: 11, patience: 46 }); // 506 steps, the first whole check past 500
    expect(validationChecks({ ...b, emaDecay: 0.999 }, 80)).toEqual({ validateEvery: 100, patience: 5, emaDecay: 0.999 }); // the trainer averages, checks and keeps the average
  });
});
