/**
 * The MNIST -> USPS presets over the transfer experiment, end to end on the real data at smoke
 * scale: every arm and both families, two target sizes, resumption from a saved source model,
 * the CLI overrides, and the digit-3 source sizes past MNIST's 6,131 threes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { MNIST_USPS_PRESETS, planTransferCells, runExperiment, runMnistUsps, type CellResult, type SummaryRow } from '@transfuse/models/node';
import { useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;

describe('mnist-usps presets (smoke, end to end)', () => {
  test('mnist-usps-conditional: all arms, both families, n_t 60 and all; resumes from the saved source', async () => {
    const name = 'mnist-usps-conditional';
    const out = mkdtempSync(join(tmpdir(), `transfuse-${name}-`));
    const md = await runExperiment(name, { preset: 'smoke', dataDir: DATA, out, log: () => {} });
    expect(md).toMatch(/\| model \| n_t \| n_s \| transfer W1 \| baseline W1 \| matched W1 \|/);
    const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(r.protocolVersion).toBe(2);
    expect(r.floor.w1).toBeGreaterThan(0);
    expect(Object.keys(r.floor.perClass)).toHaveLength(10);
    expect(r.classifier.heldOutAccuracy).toBeGreaterThan(0.3);
    expect([r.targetTrain, r.heldOut]).toEqual([5103, 2188]);
    const cells = r.cells as CellResult[];
    // Per family: 2 n_t x (baseline + transfer + variant + matched) at n_s = 200.
    for (const family of ['diffusion', 'flow']) expect(cells.filter((c) => c.family === family).length, family).toBe(8);
    for (const c of cells) {
      expect(c.w1).toBeGreaterThan(0);
      expect(c.classAccuracy).toBeGreaterThanOrEqual(0);
      expect(c.totalImages).toBeGreaterThan(0);
      expect(existsSync(join(out, 'samples', `${c.family}-${c.arm}-nt${c.nt}${c.ns === null ? '' : `-ns${c.ns}`}-seed0.png`))).toBe(true);
    }
    expect(cells.find((c) => c.family === 'flow')!.bitsPerDim).toBeGreaterThan(0);
    expect(cells.find((c) => c.family === 'diffusion')!.bitsPerDim).toBeUndefined();
    // The flows' held-out bits/dim are summarized like W1: per arm over seeds, paired against both baselines.
    const flowRow = (r.summary.rows as SummaryRow[]).find((row) => row.family === 'flow' && row.nt === 'all')!;
    expect(flowRow.arms.transfer!.bitsPerDim!.mean).toBeCloseTo(cells.find((c) => c.family === 'flow' && c.arm === 'transfer' && c.nt === 'all')!.bitsPerDim!, 10);
    expect(flowRow.bpdVsMatched!.n).toBe(1);
    expect((r.summary.rows as SummaryRow[]).find((row) => row.family === 'diffusion')!.bpdVsBaseline).toBeUndefined();
    expect(md).toMatch(/Held-out bits\/dim of the flows .*\n\n\| model \| n_t \| n_s \| transfer \| baseline \| matched \| transfer - baseline \| transfer - matched \| variant \|\n\|---.*\n\| flow \| 60 \| 200 \| \d+\.\d{3} \|/);
    expect(new Set(cells.map((c) => c.ntUsed))).toEqual(new Set([60, 5103]));
    for (const f of ['results.md', 'w1.svg', 'gain.svg', 'validation.svg', 'usps-split.json']) expect(existsSync(join(out, f)), f).toBe(true);
    // A run stopped between the cells of one n_s loads the saved source model and redoes the cell.
    rmSync(join(out, 'cells', 'diffusion-variant-ntall-ns200-seed0.json'));
    const logs: string[] = [];
    const again = await runExperiment(name, { preset: 'smoke', dataDir: DATA, out, log: (m) => logs.push(m) });
    expect(logs.some((m) => m.startsWith('[diffusion-source-ns200-seed0] loaded from')), logs.join('\n')).toBe(true);
    expect(logs.filter((m) => m.includes('finished in')).map((m) => m.split(']')[0])).toEqual(['[diffusion-variant-ntall-ns200-seed0']);
    const redone = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).cells as CellResult[];
    const variant = (cs: CellResult[]) => cs.find((c) => c.family === 'diffusion' && c.arm === 'variant' && c.nt === 'all')!.w1;
    expect(variant(redone)).toBeCloseTo(variant(cells), 4);
    expect(again).toBe(md);
  }, 600_000);

  test('--ns and --families replace the preset and are checked; slices of the same settings share a folder', async () => {
    const out = mkdtempSync(join(tmpdir(), 'transfuse-overrides-'));
    const preset = { ...MNIST_USPS_PRESETS.smoke, ntList: ['all' as const] };
    const r = await runMnistUsps({ preset: { ...preset, nsList: [50], flow: undefined, diffusion: { ...preset.diffusion!, arms: ['transfer'] } }, presetName: 'smoke, n_s 50', conditional: false, dataDir: DATA, out, log: () => {} });
    expect(r.cells.map((c) => [c.family, c.arm, c.ns])).toEqual([['diffusion', 'transfer', 50]]);
    expect([r.targetTrain, r.heldOut]).toEqual([461, 197]);
    const run = (o: Partial<Parameters<typeof runExperiment>[1]>, name = 'mnist-usps-digit3') => runExperiment(name, { preset: 'smoke', dataDir: DATA, out, log: () => {}, ...o });
    // The plain preset cannot reuse that folder: its diffusion arms differ, so its cells would mix with the changed run's.
    await expect(run({})).rejects.toThrow(/holds results of a different run \(.*config\.json\): the diffusion settings differ/);
    // Another slice of the same settings can: its finished cells are read, not trained again, and reported with the new ones.
    const logs: string[] = [];
    const wider = await runMnistUsps({ preset: { ...preset, nsList: [50, 80], flow: undefined, diffusion: { ...preset.diffusion!, arms: ['transfer'] } }, presetName: 'smoke, n_s 50, 80', conditional: false, dataDir: DATA, out, log: (m) => logs.push(m) });
    expect(logs.filter((m) => m.includes('finished in')).map((m) => m.split(']')[0])).toEqual(['[diffusion-source-ns80-seed0', '[diffusion-transfer-ntall-ns80-seed0']);
    expect(wider.cells.map((c) => [c.arm, c.ns])).toEqual([['transfer', 50], ['transfer', 80]]);
    expect(wider.cells[0].w1).toBe(r.cells[0].w1);
    // --arms (with --families) gives the same settings from the command line: the folder takes it, and nothing is trained again.
    const again: string[] = [];
    expect(await run({ ns: [50], nt: ['all'], families: ['diffusion'], arms: ['transfer'], log: (m) => again.push(m) })).toContain('arms transfer');
    expect(again.filter((m) => m.includes('finished in'))).toEqual([]);
    await expect(run({ arms: ['baseline', 'matched'] })).rejects.toThrow("--arms: 'matched' needs 'transfer' or 'variant', whose total steps it is given");
    await expect(run({ arms: ['transfer', 'transfer'] })).rejects.toThrow("--arms takes distinct names of transfer, variant, baseline, matched, got 'transfer,transfer'");
    await expect(run({ ns: [0] })).rejects.toThrow(/--ns must list positive whole numbers, got 0/);
    await expect(run({ families: ['gan' as never] })).rejects.toThrow(/--families takes diffusion and\/or flow, got 'gan'/);
    await expect(run({ preset: 'demo', families: ['flow'] })).rejects.toThrow("--families: preset 'demo' has no flow settings (it runs diffusion)");
    await expect(run({ families: ['diffusion'], targetActnormPrior: 256 })).rejects.toThrow("--target-actnorm-prior sets the flows' ActNorm init; --families diffusion runs no flows");
    await expect(run({ preset: 'demo', targetActnormPrior: 256 })).rejects.toThrow("--target-actnorm-prior sets the flows' ActNorm init; this preset runs no flows");
    await expect(run({ ns: [50] }, 'sec-simulation')).rejects.toThrow(/apply to the mnist-usps experiments, not 'sec-simulation'/);
  });

  test('mnist-usps-digit3: every n_s past the 6,131 MNIST threes runs once, labelled with the size used', async () => {
    const out = mkdtempSync(join(tmpdir(), 'transfuse-digit3-sizes-'));
    const logs: string[] = [];
    const s = MNIST_USPS_PRESETS.smoke;
    const preset = { ...s, nsList: [200, 7000, 60000], ntList: ['all' as const], flow: undefined, diffusion: { ...s.diffusion!, arms: ['transfer' as const] } };
    const r = await runMnistUsps({ preset, presetName: 'smoke', conditional: false, dataDir: DATA, out, log: (m) => logs.push(m) });
    expect(r.sourceSizes).toEqual({ 200: 200, 7000: 6131, 60000: 6131 });
    expect(r.cells.map((c) => c.ns)).toEqual([200, 7000]);
    expect(logs.some((m) => m.includes('n_s=60000') && m.includes('skipped') && m.includes('n_s=7000')), logs.join('\n')).toBe(true);
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/\| diffusion \| all \(461\) \| 7000 \(all 6131\) \|/);
    // Class fidelity of the threes: a classifier of all ten USPS classes (its held-out part alone
    // outnumbers the 461 training threes) labels every sample; the score is the share called 3.
    expect(r.classifier!.heldOut).toBeGreaterThan(461);
    for (const c of r.cells) {
      expect(c.classAccuracy).toBeGreaterThanOrEqual(0);
      expect(c.classAccuracy).toBeLessThanOrEqual(1);
      expect(Object.keys(c.perClassAccuracy!)).toEqual(['3']);
      expect(c.perClassAccuracy![3]).toBe(c.classAccuracy);
    }
    // The plan has the classifier cell for one kept class or a conditional model, not for several unconditional classes.
    const plan = (conditional: boolean, classes?: number[]) => planTransferCells({ ...s, conditional }, 60000, classes).cells.some((c) => c.kind === 'classifier');
    expect([plan(false, [3]), plan(true), plan(false, [3, 5]), plan(false)]).toEqual([true, true, false, false]);
  });
});
