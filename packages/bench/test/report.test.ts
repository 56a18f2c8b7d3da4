/** The bench's CLI parsing, table and target checks (no GPU needed). */
import { describe, expect, it } from 'vitest';
import { ceilings, formatTable, median, parseCliArgs, targetLines, throughputOf } from '../src/report.js';
import type { CaseResult } from '../src/types.js';

const ok = (throughput: number, medianMs = 1) => ({ medianMs, samples: 3, throughput });

describe('bench CLI arguments', () => {
  it('parses every option and keeps defaults otherwise', () => {
    expect(parseCliArgs([])).toEqual({ only: null, json: null, timeMs: 1000, peer: 'auto', variant: 'auto', help: false, models: false, tune: null });
    expect(parseCliArgs(['--only', 'matmul', '--json', 'out.json', '--time', '250', '--no-peer', '--variant', 'tiled'])).toEqual({
      only: 'matmul',
      json: 'out.json',
      timeMs: 250,
      peer: 'none',
      variant: 'tiled',
      help: false,
      models: false,
      tune: null,
    });
    expect(parseCliArgs(['--models', '--peer', 'torch', '--tune', 'on'])).toMatchObject({ models: true, peer: 'torch', tune: true });
    expect(parseCliArgs(['-h']).help).toBe(true);
    expect(parseCliArgs(['--models']).models).toBe(true);
  });

  it('rejects unknown arguments, missing values and bad times with the usage text', () => {
    expect(() => parseCliArgs(['--fast'])).toThrow(/unknown argument '--fast'\nUsage:/);
    expect(() => parseCliArgs(['--only'])).toThrow(/--only needs a value/);
    expect(() => parseCliArgs(['--json', '--time', '5'])).toThrow(/--json needs a value/);
    expect(() => parseCliArgs(['--time', '-3'])).toThrow(/--time wants a positive number of milliseconds, got '-3'/);
    expect(() => parseCliArgs(['--time', 'soon'])).toThrow(/got 'soon'/);
    expect(() => parseCliArgs(['--variant', 'fast'])).toThrow(/--variant wants one of auto, generic, vec4, tiled, got 'fast'/);
    expect(() => parseCliArgs(['--peer', 'jax'])).toThrow(/--peer wants one of auto, tfjs, torch, none, got 'jax'/);
    expect(() => parseCliArgs(['--peer', 'torch'])).toThrow(/--peer torch runs the model cases only; add --models/);
    expect(() => parseCliArgs(['--tune', 'maybe'])).toThrow(/--tune wants on or off, got 'maybe'/);
  });
});

describe('bench report', () => {
  const results: CaseResult[] = [
    { name: 'fma peak', unit: 'GFLOP/s', kind: 'ceiling', work: 1e9, transfuse: ok(40), tfjs: null },
    { name: 'copy', unit: 'GB/s', kind: 'ceiling', work: 1e9, transfuse: ok(10), tfjs: null },
    { name: 'matmul 1024', unit: 'GFLOP/s', kind: 'case', target: 'compute', work: 2e9, transfuse: ok(8), tfjs: ok(3.2) },
    { name: 'naive matmul 1024 (baseline)', unit: 'GFLOP/s', kind: 'baseline', work: 2e9, transfuse: ok(0.5), tfjs: null },
    { name: 'conv3x3 fwd', unit: 'GFLOP/s', kind: 'case', target: 'compute', work: 1e9, transfuse: ok(4), tfjs: ok(3) },
    { name: 'add', unit: 'GB/s', kind: 'case', work: 1e9, transfuse: ok(5), tfjs: { error: 'boom\nstack' } },
  ];

  it('converts work and milliseconds to billions per second, and takes medians', () => {
    expect(throughputOf(2e9, 250)).toBeCloseTo(8, 12);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('takes the ceilings per unit and prints ratios and % of ceiling', () => {
    expect(ceilings(results)).toEqual({ 'GFLOP/s': 40, 'GB/s': 10 });
    const table = formatTable(results).split('\n');
    expect(table[0]).toMatch(/^\| case +\| unit +\| Transfuse \(median\) +\| tfjs-webgpu \(median\) +\| ratio +\| % of ceiling +\|$/);
    const row = (name: string) => table.find((l) => l.startsWith(`| ${name} `))!;
    expect(row('matmul 1024')).toMatch(/\| 8\.00 \(1\.00 ms\) +\| 3\.20 \(1\.00 ms\) +\| 2\.50x +\| 20\.0% +\|$/);
    expect(row('add')).toMatch(/\| error: boom +\| — +\| 50\.0% +\|$/);
    expect(row('fma peak')).toMatch(/\| — +\| — +\|$/);
  });

  it('checks the targets: 2x the peer on compute cases, 20x naive for matmul 1024', () => {
    expect(targetLines(results)).toEqual([
      'MET     matmul 1024: 2.50x tfjs-webgpu (target >= 2x)',
      'NOT MET conv3x3 fwd: 1.33x tfjs-webgpu (target >= 2x)',
      'NOT MET matmul 1024: 16.0x the naive kernel (target >= 20x)',
    ]);
  });
});
