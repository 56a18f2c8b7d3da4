import { describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConditionEncoder, MlpScoreNet } from '../src/diffusion/mlp.js';
import { fineTuneHead, posteriorMean, pretrainMultiSource, trainFromScratch, type VectorTask } from '../src/transfer/multisource.js';
import {
  CHENG_RESTORATION_PRESETS,
  CHENG_SYNTHETIC_PRESETS,
  cholesky,
  eulerMaruyamaPath,
  malaMean,
  OBS_VAR,
  projectionMatrix,
  runChengRestoration,
  runChengSynthetic,
  sdePosteriorMeans,
  sdePrecision,
  linearPosteriorMean,
  solveChol,
} from '../src/experiments/cheng/index.js';
import { createRng } from '../src/data/prng.js';
import { seededRandom, useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;

/** n pairs with x = a_k·(1, -1, 1, ...) + 0.1 noise and y = x's first coordinate sign-flipped + noise. */
function task(n: number, dx: number, dy: number, shift: number, seed: number): VectorTask {
  const rnd = seededRandom(seed);
  const x = new Float32Array(n * dx);
  const y = new Float32Array(n * dy);
  for (let i = 0; i < n; i++) {
    const z = rnd(-1, 1);
    for (let j = 0; j < dx; j++) x[i * dx + j] = z * (j % 2 ? -1 : 1) + shift + 0.1 * rnd(-1, 1);
    for (let j = 0; j < dy; j++) y[i * dy + j] = z + 0.1 * rnd(-1, 1);
  }
  return { x, y, n };
}

const head = (seed: number) => new MlpScoreNet({ dataDim: 4, condDim: 3, hidden: 32, depth: 2, timeDim: 8, tMax: 5, seed });
const encoder = (seed: number) => new ConditionEncoder({ inFeatures: 2, outFeatures: 3, hidden: 16, depth: 3, seed });
const snapshot = async (m: ConditionEncoder) => Promise.all(m.parameters().map(async (p) => Array.from(await p.data())));

describe('multi-source representation learning', () => {
  test('pre-training lowers the loss; fine-tuning leaves h bit-identical; scratch gets the same rows and steps', async () => {
    const sources = [0, 0.5, -0.5].map((s, k) => task(64, 4, 2, s, k + 1));
    const h = encoder(1);
    const losses: number[] = [];
    await pretrainMultiSource(sources, { heads: sources.map((_, k) => head(10 + k)), encoder: h, steps: 150, batchSize: 32, lr: 3e-3, logEvery: 1, seed: 1, onLog: (_, l) => losses.push(l) });
    const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    // ε-prediction starts near E‖ε‖²/d = 1; a fitted model explains part of the noise.
    expect(avg(losses.slice(-30))).toBeLessThan(0.8 * avg(losses.slice(0, 10)));

    const target = task(10, 4, 2, 0.25, 9);
    const before = await snapshot(h);
    const rowsFt: string[] = [];
    const rowsScratch: string[] = [];
    const opts = { steps: 12, batchSize: 10, lr: 1e-3, seed: 4, logEvery: 1 };
    const ft = await fineTuneHead(h, head(20), target, { ...opts, onBatch: (_k, r) => rowsFt.push(Array.from(r).join()) });
    expect(await snapshot(h)).toEqual(before);
    expect(h.trainableParameters()).toHaveLength(0);
    const h0 = encoder(2);
    const h0Before = await snapshot(h0);
    const sc = await trainFromScratch(h0, head(20), target, { ...opts, onBatch: (_k, r) => rowsScratch.push(Array.from(r).join()) });
    expect(await snapshot(h0)).not.toEqual(h0Before);
    expect(ft.steps).toBe(sc.steps);
    expect(rowsFt).toHaveLength(12);
    expect(rowsScratch).toEqual(rowsFt);
    // batch = m: every step sees all 10 target pairs.
    expect(new Set(rowsFt[0].split(',')).size).toBe(10);

    const est = await posteriorMean(head(21), h, target.y, target.n, { steps: 5, samples: 4, seed: 1 });
    expect(est.mean).toHaveLength(40);
    expect(est.mean.every(Number.isFinite)).toBe(true);
    for (let i = 0; i < 40; i++) expect(est.meanSquare[i]).toBeGreaterThanOrEqual(est.mean[i] ** 2 - 1e-4);
  });
});

describe('conditional diffusion learns a posterior', () => {
  test.each(['epsilon', 'sample'] as const)('linear-Gaussian x ~ N(0, I₄), y = Mx + N(0, I/4) in 6-D, %s-prediction: the error of the sampled posterior mean is under 0.3 x that of the zero estimate', async (prediction) => {
    const dx = 4;
    const dy = 6;
    const M = projectionMatrix(31, dy, dx);
    const draw = (n: number, seed: number): VectorTask => {
      const rng = createRng(seed);
      const x = Float32Array.from({ length: n * dx }, () => rng.normal());
      const y = new Float32Array(n * dy);
      for (let i = 0; i < n; i++) for (let r = 0; r < dy; r++) {
        let v = 0;
        for (let j = 0; j < dx; j++) v += M[r * dx + j] * x[i * dx + j];
        y[i * dy + r] = v + Math.sqrt(OBS_VAR) * rng.normal();
      }
      return { n, x, y };
    };
    // Closed form: precision P = I + M'M/σ², mean P⁻¹ M'y/σ², covariance P⁻¹.
    const P = new Float64Array(dx * dx);
    for (let i = 0; i < dx; i++) {
      P[i * dx + i] = 1;
      for (let j = 0; j < dx; j++) for (let r = 0; r < dy; r++) P[i * dx + j] += (M[r * dx + i] * M[r * dx + j]) / OBS_VAR;
    }
    const L = cholesky(P, dx);
    const test_ = draw(100, 32);
    const exact = new Float64Array(test_.n * dx);
    for (let i = 0; i < test_.n; i++) {
      const b = new Float64Array(dx);
      for (let j = 0; j < dx; j++) for (let r = 0; r < dy; r++) b[j] += (M[r * dx + j] * test_.y[i * dy + r]) / OBS_VAR;
      exact.set(solveChol(L, b), i * dx);
    }
    let trace = 0;
    for (let j = 0; j < dx; j++) trace += solveChol(L, Float64Array.from({ length: dx }, (_, k) => (k === j ? 1 : 0)))[j];

    const h = new ConditionEncoder({ inFeatures: dy, outFeatures: 8, hidden: 64, depth: 3, seed: 33 });
    const f = new MlpScoreNet({ dataDim: dx, condDim: 8, hidden: 64, depth: 2, timeDim: 16, tMax: 5, prediction, dataStd: 1, seed: 34 });
    await trainFromScratch(h, f, draw(4000, 35), { steps: 1200, batchSize: 128, lr: 2e-3, seed: 36, finalLrFraction: 0.1 });
    const est = await posteriorMean(f, h, test_.y, test_.n, { steps: 50, samples: 64, seed: 37 });
    let err = 0;
    let zero = 0;
    let variance = 0;
    for (let k = 0; k < exact.length; k++) {
      err += (est.mean[k] - exact[k]) ** 2 / test_.n;
      zero += exact[k] ** 2 / test_.n;
      variance += (est.meanSquare[k] - est.mean[k] ** 2) / test_.n;
    }
    process.stderr.write(`linear-Gaussian posterior (${prediction}): MSE ${err.toFixed(4)}, zero estimate ${zero.toFixed(4)}, sampled variance ${variance.toFixed(4)} (exact trace ${trace.toFixed(4)})\n`);
    expect(err).toBeLessThan(0.3 * zero);
    // The samples spread like the posterior (within a factor of 2), not like the prior (trace 4).
    expect(variance).toBeGreaterThan(trace / 2);
    expect(variance).toBeLessThan(2 * trace);
    f.dispose();
    h.dispose();
  }, 240_000);
});

describe('synthetic data and the reference posterior mean', () => {
  test('the EM generator matches a float64 recursion on a fixed noise sequence (atol 1e-12)', () => {
    const rnd = seededRandom(3);
    for (const beta of [0, 5.5, 15]) {
      const xi = Array.from({ length: 50 }, () => rnd(-2, 2));
      let u = 0;
      const want = xi.map((z) => (u += 0.02 * beta * ((u - u ** 3) / (1 + u ** 2)) + Math.sqrt(0.02) * z));
      const got = eulerMaruyamaPath(beta, xi);
      want.forEach((w, j) => expect(Math.abs(got[j] - w)).toBeLessThan(1e-12));
    }
  });

  test('pMALA recovers the closed-form Gaussian posterior mean (prior N(0, I), y = Mx + noise) within 5 Monte Carlo SE', () => {
    const d = 8;
    const rows = 12;
    const M = projectionMatrix(5, rows, d);
    const rng = createRng(6);
    const y = Float64Array.from({ length: rows }, () => rng.normal());
    // Precision I + M'M/σ², mean = P⁻¹ M'y/σ².
    const P = new Float64Array(d * d);
    const b = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      P[i * d + i] = 1;
      for (let j = 0; j < d; j++) for (let r = 0; r < rows; r++) P[i * d + j] += (M[r * d + i] * M[r * d + j]) / OBS_VAR;
      for (let r = 0; r < rows; r++) b[i] += (M[r * d + i] * y[r]) / OBS_VAR;
    }
    const exact = solveChol(cholesky(P, d), b);
    const logp = (x: Float64Array, g: Float64Array) => {
      let lp = 0;
      for (let i = 0; i < d; i++) {
        g[i] = -x[i];
        lp -= (x[i] * x[i]) / 2;
      }
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += M[r * d + j] * x[j];
        lp -= (y[r] - s) ** 2 / (2 * OBS_VAR);
        for (let j = 0; j < d; j++) g[j] += (M[r * d + j] * (y[r] - s)) / OBS_VAR;
      }
      return lp;
    };
    // Identity preconditioner (a worse one than the exact precision) still converges.
    const I = new Float64Array(d * d).map((_, k) => (k % (d + 1) === 0 ? 1 : 0));
    const r = malaMean(logp, new Float64Array(d), I, { burnIn: 2000, samples: 40000, seed: 7 });
    const err = exact.reduce((s, e, i) => s + (r.mean[i] - e) ** 2, 0);
    expect(r.acceptance).toBeGreaterThan(0.3);
    expect(err).toBeLessThan(25 * r.mcError + 1e-6);
    expect(r.mcError).toBeLessThan(1e-2);
  });

  test('the SDE posterior at β = 0 (a Gaussian random walk) matches its closed form within 5 Monte Carlo SE', () => {
    const M = projectionMatrix(8);
    const rng = createRng(9);
    const y = Float64Array.from({ length: 100 }, () => rng.normal());
    const b = new Float64Array(50);
    for (let j = 0; j < 50; j++) for (let k = 0; k < 100; k++) b[j] += (M[k * 50 + j] * y[k]) / OBS_VAR;
    const exact = solveChol(cholesky(sdePrecision(M), 50), b);
    // The chain starts at the β = 0 mean (the answer here): this checks the SDE log-density and
    // gradient keep it there; convergence from elsewhere is the previous test's.
    const r = sdePosteriorMeans(0, M, y, 1, { burnIn: 500, samples: 4000, seed: 3 });
    const err = exact.reduce((s, e, i) => s + (r.means[i] - e) ** 2, 0);
    expect(err).toBeLessThan(25 * r.mcError + 1e-9);
    expect(r.acceptance).toBeGreaterThan(0.3);
  });
});

describe('the linear yardstick', () => {
  test('1-D: x̂ = μ + s²/(s² + σ²)(y − μ) with the rows\' mean and (biased) variance; 2-D: equals the explicit 2x2 inverse (rtol 1e-12)', () => {
    const x1 = Float64Array.from([0.1, 0.5, 0.9, 0.3]);
    const mu = 0.45;
    const s2 = x1.reduce((a, v) => a + (v - mu) ** 2, 0) / 4;
    const y1 = Float64Array.from([0.2, 1.3]);
    const got1 = linearPosteriorMean(x1, 4, 1, 0.25, y1);
    y1.forEach((y, i) => expect(got1[i]).toBeCloseTo(mu + (s2 / (s2 + 0.25)) * (y - mu), 12));

    const rng = createRng(4);
    const n = 7;
    const x2 = Float64Array.from({ length: 2 * n }, () => rng.normal());
    const m = [0, 1].map((j) => Array.from({ length: n }, (_, r) => x2[2 * r + j]).reduce((a, b) => a + b, 0) / n);
    const cov = (a: number, b: number) => Array.from({ length: n }, (_, r) => (x2[2 * r + a] - m[a]) * (x2[2 * r + b] - m[b])).reduce((u, v) => u + v, 0) / n;
    const [s00, s01, s11] = [cov(0, 0), cov(0, 1), cov(1, 1)];
    const v = 0.3;
    const [a, b, d] = [s00 + v, s01, s11 + v];
    const det = a * d - b * b;
    const y2 = Float64Array.from([0.7, -1.1]);
    const r0 = y2[0] - m[0];
    const r1 = y2[1] - m[1];
    // Σ (Σ + vI)⁻¹ r, written out.
    const z0 = (d * r0 - b * r1) / det;
    const z1 = (-b * r0 + a * r1) / det;
    const want = [m[0] + s00 * z0 + s01 * z1, m[1] + s01 * z0 + s11 * z1];
    const got2 = linearPosteriorMean(x2, n, 2, v, y2);
    want.forEach((w, j) => expect(Math.abs(got2[j] - w)).toBeLessThan(1e-12 * Math.max(1, Math.abs(w))));
    expect(() => linearPosteriorMean(x2, n, 3, v, y2)).toThrow('linearPosteriorMean: x holds 14 values for 7x3');
  });
});

describe('smoke presets', () => {
  test('cheng-synthetic and cheng-restoration run end to end and write results', async () => {
    const out1 = mkdtempSync(join(tmpdir(), 'cheng-syn-'));
    const md1 = await runChengSynthetic({ preset: CHENG_SYNTHETIC_PRESETS.smoke, presetName: 'smoke', out: out1, log: () => {} });
    expect(md1).toMatch(/Target beta 5.5/);
    expect(md1).toMatch(/Target beta 15/);
    const r1 = JSON.parse(readFileSync(join(out1, 'results.json'), 'utf8'));
    for (const t of Object.values(r1.cells) as Record<string, Record<string, { mse: number }[]>>[]) {
      for (const m of ['10', '50']) expect(Number.isFinite(t.finetune[m][0].mse) && Number.isFinite(t.scratch[m][0].mse)).toBe(true);
    }
    expect(existsSync(join(out1, 'mse.svg'))).toBe(true);
    // Resuming recomputes nothing and gives the same table.
    expect(await runChengSynthetic({ preset: CHENG_SYNTHETIC_PRESETS.smoke, presetName: 'smoke', out: out1, log: () => {} })).toBe(md1);
    // Other settings in the same folder are refused before anything runs, so cells never mix.
    await expect(runChengSynthetic({ preset: { ...CHENG_SYNTHETIC_PRESETS.smoke, seeds: [1] }, presetName: 'smoke', out: out1, log: () => {} })).rejects.toThrow(
      /holds results of a different run \(.*config\.json\); its finished cells would be mixed/,
    );

    const out2 = mkdtempSync(join(tmpdir(), 'cheng-res-'));
    const md2 = await runChengRestoration({ preset: CHENG_RESTORATION_PRESETS.smoke, presetName: 'smoke', dataDir: DATA, out: out2, log: () => {} });
    expect(md2).toMatch(/Target digit 0/);
    expect(md2).toMatch(/Trivial estimate/);
    expect(md2).toMatch(/Best linear estimate .* m=10: 0\.\d{4}.*training zeros: 0\.\d{4}/);
    process.stderr.write(`${md1}\n${md2}\n`);
  }, 240_000);
});
