/**
 * The sec-simulation experiment: the closed-form densities against Monte Carlo / quadrature checks,
 * and the smoke preset end to end (results.json, results.md, kl.svg).
 */
import { describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '../src/data/prng.js';
import {
  SEC_MAPS,
  SEC_NOISE,
  SEC_SIMULATION_PRESETS,
  conditionalLogDensity,
  runSecSimulation,
  sampleConditional,
  sampleUnconditional,
  unconditionalLogDensity,
  type SecSimulationResults,
} from '../src/experiments/sec-simulation.js';
import { useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

/** ∫∫ exp(logp) over a grid (midpoint rule). */
function integrate(logp: (x0: number, x1: number) => number, lo: number, hi: number, n: number): number {
  const h = (hi - lo) / n;
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += Math.exp(logp(lo + (i + 0.5) * h, lo + (j + 0.5) * h));
  return s * h * h;
}

describe('sec-simulation', () => {
  test('the closed-form densities integrate to 1 and match the samplers (mean log-density vs entropy)', () => {
    for (const task of ['source', 'target'] as const) {
      expect(integrate((a, b) => conditionalLogDensity(a, b, 3, SEC_NOISE[task]), -8, 8, 800)).toBeCloseTo(1, 3);
      expect(integrate((a, b) => unconditionalLogDensity(a, b, SEC_MAPS[task]), -8, 8, 800)).toBeCloseTo(1, 3);
    }
    // For the Gaussian-noise source, E[log p(x|z)] = -(1 + log 2π + log ab) exactly.
    const d = sampleConditional(20000, SEC_NOISE.source, createRng(1));
    let s = 0;
    for (let i = 0; i < d.n; i++) s += conditionalLogDensity(d.x[2 * i], d.x[2 * i + 1], d.labels![i], SEC_NOISE.source);
    const exact = -(1 + Math.log(2 * Math.PI) + Math.log(SEC_NOISE.source.a * SEC_NOISE.source.b));
    expect(Math.abs(s / d.n - exact)).toBeLessThan(0.03);
    // Samples of X_t lie where the density is: the mean log-density of true samples exceeds that of shifted points.
    const u = sampleUnconditional(2000, SEC_MAPS.target, createRng(2));
    const mean = (shift: number) => Array.from({ length: u.n }, (_, i) => unconditionalLogDensity(u.x[2 * i] + shift, u.x[2 * i + 1], SEC_MAPS.target)).reduce((a, b) => a + b, 0) / u.n;
    expect(mean(0)).toBeGreaterThan(mean(0.5) + 0.5);
  });

  test('the smoke preset runs end to end and writes results.json, results.md and kl.svg', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sec-sim-'));
    const started = performance.now();
    const md = await runSecSimulation({ preset: SEC_SIMULATION_PRESETS.smoke, presetName: 'smoke', out, log: () => {} });
    const seconds = (performance.now() - started) / 1000;
    for (const f of ['results.json', 'results.md', 'kl.svg']) expect(existsSync(join(out, f)), f).toBe(true);
    const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as SecSimulationResults;
    for (const s of [r.conditional, r.unconditional]) {
      expect(s.baseline).toHaveLength(1);
      expect(Object.keys(s.transfer)).toEqual(['100', '1000']);
      for (const e of [...s.baseline, ...Object.values(s.transfer).flat(), ...Object.values(s.variant).flat()]) {
        expect(Number.isFinite(e.kl)).toBe(true);
        // KL >= 0 up to Monte Carlo error.
        expect(e.kl).toBeGreaterThan(-4 * e.se);
        // Early stopping ran: the kept step is one of the checks, at most the cap.
        expect(e.bestStep! % 10 === 0 || e.bestStep === 60).toBe(true);
        expect(e.bestStep!).toBeLessThanOrEqual(e.steps!);
        expect(e.steps!).toBeLessThanOrEqual(60);
      }
    }
    expect(md).toContain('## Conditional');
    expect(md).toContain('| 1000 |');
    expect(md).toContain('Mean step kept by early stopping');
    process.stderr.write(`sec-simulation smoke: ${seconds.toFixed(1)} s\n${md}`);
  });
});
