import { describe, expect, test } from 'vitest';
import { noGrad, sum, tensor } from '@transfuse/core';
import { ConditionEncoder, FixedWidthMlp, MlpScoreNet, x0Scales } from '../src/diffusion/mlp.js';
import { expectClose, seededRandom, useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

describe('MlpScoreNet and ConditionEncoder', () => {
  test('a FixedWidthMlp matches a float64 reference of Linear → ReLU → Linear (rtol 1e-4, atol 1e-5)', async () => {
    const rnd = seededRandom(1);
    const net = new FixedWidthMlp(5, 7, 3, 2, 'relu', 11);
    const x = Float32Array.from({ length: 4 * 5 }, () => rnd(-1, 1));
    const got = await noGrad(() => net.forward(tensor(x, [4, 5]))).data();
    const [w1, b1, w2, b2] = await Promise.all(net.parameters().map((p) => p.data()));
    const want: number[] = [];
    for (let i = 0; i < 4; i++) {
      const h = Array.from({ length: 7 }, (_, o) => Math.max(0, b1[o] + [...Array(5).keys()].reduce((s, k) => s + w1[o * 5 + k] * x[i * 5 + k], 0)));
      for (let o = 0; o < 3; o++) want.push(b2[o] + h.reduce((s, v, k) => s + w2[o * 7 + k] * v, 0));
    }
    expectClose(got, want, { rtol: 1e-4, atol: 1e-5 }, 'mlp');
  });

  test('shapes: h maps [B, D_y] to R^{d_y} (or (0, 1)^{d_y} through a sigmoid); f maps [x, h(y), t] to [B, d_x]; the paper sizes count', async () => {
    const h = new ConditionEncoder({ inFeatures: 12, outFeatures: 4, hidden: 16, depth: 5, seed: 1 });
    const hSigmoid = new ConditionEncoder({ inFeatures: 12, outFeatures: 4, hidden: 16, depth: 5, seed: 1, output: 'sigmoid' });
    const f = new MlpScoreNet({ dataDim: 6, condDim: 4, hidden: 8, depth: 2, timeDim: 8, tMax: 5, seed: 2 });
    const y = tensor(new Float32Array(3 * 12).map((_, i) => 3 * Math.sin(i)), [3, 12]);
    const w = h.forward(y);
    expect(w.shape).toEqual([3, 4]);
    const wv = await w.data();
    const sv = await hSigmoid.forward(y).data();
    sv.forEach((v, i) => {
      expect(v).toBeGreaterThan(0);
      expect(v).toBeLessThan(1);
      expect(Math.abs(v - 1 / (1 + Math.exp(-wv[i])))).toBeLessThan(1e-6);
    });
    const eps = f.forward(tensor(new Float32Array(18).fill(0.5), [3, 6]), w, tensor(Float32Array.from([0.01, 1, 4.9])));
    expect(eps.shape).toEqual([3, 6]);
    // The paper's Exp. 1 encoder: 100·512 + 3·512² + 512·10 weights plus biases.
    const paper = new ConditionEncoder({ inFeatures: 100, outFeatures: 10, hidden: 512, depth: 5 });
    expect(paper.numParameters()).toBe(100 * 512 + 512 + 3 * (512 * 512 + 512) + 512 * 10 + 10);
    paper.dispose();
    // The paper's Exp. 1 head takes 60 channels plus the time embedding.
    expect(f.mlp.layers.at(0).inFeatures).toBe(6 + 4 + 8);
    expect(() => f.forward(tensor(new Float32Array(18), [3, 6]), w, tensor(new Int32Array(3)))).toThrow(/float32 times/);
  });

  test('gradients reach every parameter of f and h through the concatenation', async () => {
    const h = new ConditionEncoder({ inFeatures: 5, outFeatures: 3, hidden: 8, depth: 3, activation: 'silu', seed: 3 });
    const f = new MlpScoreNet({ dataDim: 4, condDim: 3, hidden: 8, depth: 3, tMax: 5, seed: 4 });
    const rnd = seededRandom(5);
    const y = tensor(Float32Array.from({ length: 10 }, () => rnd(-1, 1)), [2, 5]);
    const x = tensor(Float32Array.from({ length: 8 }, () => rnd(-1, 1)), [2, 4]);
    sum(f.forward(x, h.forward(y), tensor(Float32Array.from([0.3, 2])))).backward();
    for (const [name, p] of [...f.namedParameters(), ...h.namedParameters()]) {
      expect(p.grad, name).not.toBeNull();
      const g = await p.grad!.data();
      expect(g.some((v) => v !== 0), `${name} has a non-zero gradient`).toBe(true);
    }
  });

  test('x0Scales: c_skip is the least-squares coefficient of x0 on x_t and c_out the residual sd, for N(0, σ_d²) data (float64, rtol 1e-5)', async () => {
    const ts = [1e-3, 0.05, 0.3, 1, 5];
    const sd = 0.5;
    const k = x0Scales(tensor(Float32Array.from(ts)), sd);
    expect(k.skip.shape).toEqual([5, 1]);
    const [skip, out] = await Promise.all([k.skip.data(), k.out.data()]);
    ts.forEach((t, i) => {
      const a = Math.exp(-t);
      const s2 = 1 - a * a;
      const varXt = a * a * sd * sd + s2;
      // Cov(x0, x_t) / Var(x_t), and Var(x0 - c x_t) = σ_d² - 2cα σ_d² + c² Var(x_t).
      const c = (a * sd * sd) / varXt;
      const resid = Math.sqrt(sd * sd - 2 * c * a * sd * sd + c * c * varXt);
      expect(Math.abs(skip[i] - c)).toBeLessThan(1e-5 * c + 1e-7);
      expect(Math.abs(out[i] - resid)).toBeLessThan(1e-5 * resid + 1e-7);
    });
    // Small t: x̂0 ≈ x_t; large t: x̂0 ≈ σ_d F.
    expect(Math.abs(skip[0] - 1)).toBeLessThan(0.01);
    expect(out[4]).toBeCloseTo(sd, 4);
  });

  test('an x0 head returns c_skip·x_t + c_out·F with F the plain MLP of the same weights', async () => {
    const config = { dataDim: 3, condDim: 2, hidden: 8, depth: 2, timeDim: 4, tMax: 5, seed: 5 };
    const eps = new MlpScoreNet(config);
    const x0 = new MlpScoreNet({ ...config, prediction: 'sample', dataStd: 0.7 });
    const rnd = seededRandom(6);
    const x = tensor(Float32Array.from({ length: 6 }, () => rnd(-1, 1)), [2, 3]);
    const w = tensor(Float32Array.from({ length: 4 }, () => rnd(-1, 1)), [2, 2]);
    const t = tensor(Float32Array.from([0.01, 2]));
    const [f, got] = await Promise.all([noGrad(() => eps.forward(x, w, t)).data(), noGrad(() => x0.forward(x, w, t)).data()]);
    const k = x0Scales(t, 0.7);
    const [skip, out, xv] = await Promise.all([k.skip.data(), k.out.data(), x.data()]);
    const want = Array.from({ length: 6 }, (_, i) => skip[Math.floor(i / 3)] * xv[i] + out[Math.floor(i / 3)] * f[i]);
    expectClose(got, want, { rtol: 1e-5, atol: 1e-6 }, 'x0 head');
    expect(() => new MlpScoreNet({ ...config, prediction: 'v' as 'sample' })).toThrow("MlpScoreNet: prediction must be 'epsilon' or 'sample', got 'v'");
  });
});
