import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { tensor } from '@transfuse/core';
import { cosineBetas, leadingTimesteps, NoiseSchedule, reverseStep, sampleBatch, vpProcess } from '../src/diffusion/index.js';
import { expectClose, useGpu, values } from '../../core/test/helpers.js';

useGpu();

describe('noise schedules (float64 closed forms)', () => {
  test('linear schedule: betas, alphas_cumprod and posterior variance', () => {
    const s = new NoiseSchedule();
    expect(s.betas[0]).toBe(1e-4);
    expect(s.betas[999]).toBeCloseTo(0.02, 15);
    expect(s.betas[500]).toBeCloseTo(1e-4 + (0.02 - 1e-4) * (500 / 999), 15);
    let prod = 1;
    for (let t = 0; t < 1000; t++) {
      prod *= 1 - s.betas[t];
      expect(s.alphasCumprod[t]).toBeCloseTo(prod, 14);
    }
    // DDPM's β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) β_t for consecutive steps.
    for (const t of [1, 10, 500, 999]) {
      const want = ((1 - s.alphasCumprod[t - 1]) / (1 - s.alphasCumprod[t])) * s.betas[t];
      expect(s.posteriorVariance(t)).toBeCloseTo(want, 14);
    }
    expect(s.posteriorVariance(0)).toBe(0);
    expect(s.alphasCumprod[999]).toBeCloseTo(4.035e-5, 7);
  });

  test('cosine schedule matches its closed form ᾱ_t = f(t+1)/f(0) until the cap', () => {
    const betas = cosineBetas(1000);
    const f = (t: number) => Math.cos(((t / 1000 + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    let prod = 1;
    for (let t = 0; t < 990; t++) {
      prod *= 1 - betas[t];
      expect(prod).toBeCloseTo(f(t + 1) / f(0), 12);
    }
    expect(Math.max(...betas)).toBeLessThanOrEqual(0.999);
  });

  test('VP process and leading timesteps', () => {
    expect(vpProcess.alpha(0.5) ** 2 + vpProcess.sigma(0.5) ** 2).toBeCloseTo(1, 15);
    // 1 - e^{-2t} ≈ 2t for small t, computed without cancellation.
    expect(Math.abs(vpProcess.sigma(1e-9) / Math.sqrt(2e-9) - 1)).toBeLessThan(1e-8);
    expect(leadingTimesteps(1000, 100).slice(0, 3)).toEqual([990, 980, 970]);
    expect(leadingTimesteps(1000, 100).at(-1)).toBe(0);
    expect(() => leadingTimesteps(1000, 0)).toThrow(/sampler steps must be an integer in 1..1000/);
  });
});

describe('forward process and samplers on the GPU', () => {
  test('addNoise, then the exact-noise epsilon model, recovers x0', async () => {
    const s = new NoiseSchedule();
    const x0 = T.rand([5, 1, 4, 3], { seed: 1, low: -1, high: 1 });
    const eps = T.randn([5, 1, 4, 3], { seed: 2 });
    const ts = [0, 17, 500, 900, 999];
    const xt = s.addNoise(x0, eps, tensor(new Int32Array(ts)));
    const [x0v, epsv, xtv] = await Promise.all([values(x0), values(eps), values(xt)]);
    const want = xtv.map((_, i) => {
      const ab = s.alphasCumprod[ts[Math.floor(i / 12)]];
      return Math.sqrt(ab) * x0v[i] + Math.sqrt(1 - ab) * epsv[i];
    });
    expectClose(xtv, want, { rtol: 1e-5, atol: 1e-6 }, 'addNoise');
    // A DDPM step to prev = -1 with the true noise returns x0 exactly (per sample t).
    for (const [b, t] of ts.entries()) {
      const xb = xt.slice([b], [b + 1]);
      const out = reverseStep(s, xb, eps.slice([b], [b + 1]), t, -1, { sampler: 'ddpm', eta: 1, clipSample: false, prediction: 'epsilon', noiseSeed: 0 });
      // Recovery divides by √ᾱ_t: float32 error grows as 1/√ᾱ (about 160 at t = 999).
      const tol = 2e-6 / Math.sqrt(s.alphasCumprod[t]);
      expectClose(await values(out), x0v.slice(b * 12, b * 12 + 12), { rtol: tol, atol: tol }, `recover x0 at t=${t}`);
    }
    expect(() => s.addNoise(x0, eps, tensor([1, 2, 3, 4, 5]))).toThrow(/addNoise: timesteps must be int32 of shape \[5\]/);
  });

  test('v-prediction round trip: the exact v gives back x0', async () => {
    const s = new NoiseSchedule({ schedule: 'cosine' });
    const x0 = T.rand([3, 6], { seed: 3, low: -1, high: 1 });
    const eps = T.randn([3, 6], { seed: 4 });
    const t = 400;
    const tt = tensor(new Int32Array([t, t, t]));
    const out = reverseStep(s, s.addNoise(x0, eps, tt), s.velocity(x0, eps, tt), t, -1, { sampler: 'ddim', eta: 0, clipSample: false, prediction: 'v', noiseSeed: 0 });
    expectClose(await values(out), await values(x0), { rtol: 1e-4, atol: 1e-5 }, 'v round trip');
  });

  test('x0-prediction: the exact x0 is returned at the last step, and an intermediate DDIM step equals the ε form', async () => {
    const s = new NoiseSchedule({ schedule: 'cosine' });
    const x0 = T.rand([3, 6], { seed: 5, low: -1, high: 1 });
    const eps = T.randn([3, 6], { seed: 6 });
    const t = 400;
    const xt = s.addNoise(x0, eps, tensor(new Int32Array([t, t, t])));
    const opts = { sampler: 'ddim', eta: 0, clipSample: false, noiseSeed: 0 } as const;
    expectClose(await values(reverseStep(s, xt, x0, t, -1, { ...opts, prediction: 'sample' })), await values(x0), { rtol: 1e-4, atol: 1e-5 }, 'x0 round trip');
    const viaX0 = await values(reverseStep(s, xt, x0, t, 200, { ...opts, prediction: 'sample' }));
    const viaEps = await values(reverseStep(s, xt, eps, t, 200, { ...opts, prediction: 'epsilon' }));
    expectClose(viaX0, viaEps, { rtol: 1e-4, atol: 1e-4 }, 'x0 vs ε step');
  });

  // With Gaussian data x0 ~ N(μ, diag σ²) the optimal ε-predictor is known in closed form:
  // E[ε | x_t] = k (x_t - √ᾱ μ) with k = √(1-ᾱ) / (ᾱ σ² + 1 - ᾱ). Every sampler step is then an
  // affine map of x plus Gaussian noise, so the law of the samples follows a float64 recursion of
  // its mean and variance: the reference, discretisation error included (DDIM with 50 steps
  // really does shrink the variance). DDPM with all 1000 steps must also land near the data law.
  const mu = [0.5, -0.3, 0.2];
  const sd = [0.3, 0.5, 0.2];
  function expectedLaw(s: NoiseSchedule, sampler: 'ddpm' | 'ddim', steps: number, eta: number, m0: number, s0: number) {
    const ts = leadingTimesteps(s.steps, steps);
    let m = 0;
    let v = 1;
    ts.forEach((t, i) => {
      const prev = i + 1 < ts.length ? ts[i + 1] : -1;
      const a = s.alphaBar(t);
      const ap = s.alphaBar(prev);
      const k = Math.sqrt(1 - a) / (a * s0 * s0 + 1 - a);
      const [cx0, dx0] = [(1 - Math.sqrt(1 - a) * k) / Math.sqrt(a), Math.sqrt(1 - a) * k]; // x0 = cx0 x + dx0 μ
      const [ce, de] = [k, -k * Math.sqrt(a)]; // ε = ce x + de μ
      let c: number;
      let d: number;
      let noise: number;
      if (sampler === 'ddim') {
        noise = prev < 0 ? 0 : eta * Math.sqrt(s.posteriorVariance(t, prev));
        const e = Math.sqrt(Math.max(0, 1 - ap - noise * noise));
        [c, d] = [Math.sqrt(ap) * cx0 + e * ce, Math.sqrt(ap) * dx0 + e * de];
      } else {
        const A = (Math.sqrt(ap) * (1 - a / ap)) / (1 - a);
        const B = (Math.sqrt(a / ap) * (1 - ap)) / (1 - a);
        [c, d] = [A * cx0 + B, A * dx0];
        noise = prev < 0 ? 0 : Math.sqrt(s.posteriorVariance(t, prev));
      }
      m = c * m + d * m0;
      v = c * c * v + noise * noise;
    });
    return { mean: m, std: Math.sqrt(v) };
  }
  for (const [name, opts] of [
    ['DDPM, 1000 steps', { sampler: 'ddpm', steps: 1000, eta: 1 }],
    ['DDPM, 100 steps', { sampler: 'ddpm', steps: 100, eta: 1 }],
    ['DDIM, 50 steps, eta 0', { sampler: 'ddim', steps: 50, eta: 0 }],
    ['DDIM, 50 steps, eta 1', { sampler: 'ddim', steps: 50, eta: 1 }],
  ] as const) {
    test(`${name} with the exact score gives the predicted Gaussian law`, async () => {
      const s = new NoiseSchedule();
      const muT = tensor([mu]);
      const varT = tensor([sd.map((v) => v * v)]);
      const model = (x: T.Tensor, t: number) => {
        const ab = s.alphasCumprod[t];
        return T.mul(T.sub(x, T.mul(muT, Math.sqrt(ab))), T.div(T.full([1, 3], Math.sqrt(1 - ab)), T.add(T.mul(varT, ab), 1 - ab)));
      };
      const n = 4000;
      const x = await values(sampleBatch(s, model, [n, 3], { ...opts, clipSample: false, seed: 11 }));
      for (let d = 0; d < 3; d++) {
        let m = 0;
        for (let i = 0; i < n; i++) m += x[i * 3 + d];
        m /= n;
        let v = 0;
        for (let i = 0; i < n; i++) v += (x[i * 3 + d] - m) ** 2;
        const std = Math.sqrt(v / (n - 1));
        const want = expectedLaw(s, opts.sampler, opts.steps, opts.eta, mu[d], sd[d]);
        // Monte Carlo standard errors with n = 4000: mean σ/√n ≤ 0.008, std about 1.1% of σ.
        expect(Math.abs(m - want.mean), `${name} mean of dim ${d}: ${m} vs ${want.mean}`).toBeLessThan(0.03);
        expect(Math.abs(std / want.std - 1), `${name} std of dim ${d}: ${std} vs ${want.std}`).toBeLessThan(0.05);
        if (opts.steps === 1000) {
          expect(Math.abs(want.mean - mu[d])).toBeLessThan(0.01);
          expect(Math.abs(want.std / sd[d] - 1)).toBeLessThan(0.02);
        }
      }
      // Off-diagonal covariance is zero for the target.
      let c01 = 0;
      for (let i = 0; i < n; i++) c01 += (x[i * 3] - mu[0]) * (x[i * 3 + 1] - mu[1]);
      expect(Math.abs(c01 / n) / (sd[0] * sd[1])).toBeLessThan(0.06);
    });
  }
});
