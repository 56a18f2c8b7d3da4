/**
 * Optimizers against float64 references of PyTorch's update equations, state dicts, frozen
 * parameters, gradient clipping, schedules, EMA, loss scaling, and a leak check of a long loop.
 */
import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import {
  Adam,
  AdamW,
  BestWeights,
  EMA,
  Linear,
  ReLU,
  SGD,
  Sequential,
  clipGradNorm,
  constantSchedule,
  cosineWithWarmup,
  crossEntropy,
  emaWarmupDecay,
  linearWarmup,
  memory,
  tensor,
  type Tensor,
} from '@transfuse/core';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';

useGpu();

// Sizes that are not a multiple of 4 exercise the last vec4's padding lanes.
const SIZES = [7, 1030];
const STEPS = 6;

interface Run {
  /** Gradients per step (float32 values). */
  grads: Float64Array[];
  p0: Float64Array;
}

function makeRun(n: number, seed: number): Run {
  const rng = seededRandom(seed);
  return { p0: f32(randomArray(n, rng)), grads: Array.from({ length: STEPS }, () => f32(randomArray(n, rng))) };
}

/** Runs the optimizer on one parameter with the given per-step gradients and lr factors. */
async function runGpu(run: Run, make: (p: Tensor) => T.Optimizer<T.BaseOptions>, lrFactors?: number[]): Promise<Float64Array> {
  const p = tensor(Float32Array.from(run.p0)).requireGrad();
  const opt = make(p);
  run.grads.forEach((g, t) => {
    p.grad = tensor(Float32Array.from(g));
    if (lrFactors) opt.setLrFactor(lrFactors[t]);
    opt.step();
    opt.zeroGrad();
  });
  const out = await values(p);
  opt.dispose();
  p.dispose();
  return out;
}

/** torch.optim.SGD's update in float64. */
function sgdRef(run: Run, o: { lr: number; momentum?: number; dampening?: number; weightDecay?: number; nesterov?: boolean }): Float64Array {
  const p = Float64Array.from(run.p0);
  const mom = o.momentum ?? 0;
  let buf: Float64Array | null = null;
  for (const g of run.grads) {
    const d = g.map((gi, i) => gi + (o.weightDecay ?? 0) * p[i]);
    if (mom !== 0) {
      buf = buf ? buf.map((b, i) => mom * b + (1 - (o.dampening ?? 0)) * d[i]) : Float64Array.from(d);
      for (let i = 0; i < d.length; i++) d[i] = o.nesterov ? d[i] + mom * buf[i] : buf[i];
    }
    for (let i = 0; i < p.length; i++) p[i] -= o.lr * d[i];
  }
  return p;
}

/** torch.optim.Adam / AdamW in float64, with an lr per step. */
function adamRef(run: Run, lrs: number[], o: { beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean }): Float64Array {
  const p = Float64Array.from(run.p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  run.grads.forEach((grad, k) => {
    const t = k + 1;
    const lr = lrs[k];
    for (let i = 0; i < p.length; i++) {
      let g = grad[i];
      if (o.decoupled) p[i] *= 1 - lr * o.weightDecay;
      else g += o.weightDecay * p[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      const mHat = m[i] / (1 - o.beta1 ** t);
      const vHat = v[i] / (1 - o.beta2 ** t);
      p[i] -= (lr * mHat) / (Math.sqrt(vHat) + o.eps);
    }
  });
  return p;
}

// Six float32 updates of O(lr) each: the rounding of every step stays below 1e-6 absolute.
const TOL = { rtol: 1e-5, atol: 2e-6 };

describe('SGD', () => {
  const variants = {
    plain: { lr: 0.1 },
    'weight decay': { lr: 0.1, weightDecay: 0.05 },
    momentum: { lr: 0.05, momentum: 0.9 },
    'momentum + dampening': { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.01 },
    nesterov: { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.02 },
  };
  for (const [name, o] of Object.entries(variants)) {
    test(`${name}: ${STEPS} steps match torch.optim.SGD's equations`, async () => {
      for (const n of SIZES) {
        const seed = freshSeed();
        const run = makeRun(n, seed);
        const got = await runGpu(run, (p) => new SGD([p], o));
        expectClose(got, sgdRef(run, o), TOL, `SGD ${name} n=${n} seed=${seed}`);
      }
    });
  }

  test('rejects Nesterov without momentum and negative rates', () => {
    const p = T.zeros([2]).requireGrad();
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(/SGD: group 0: Nesterov momentum needs momentum > 0 and dampening 0/);
    expect(() => new SGD([p], { lr: -1 })).toThrow(/SGD: group 0: lr must be >= 0, got -1/);
    expect(() => new SGD([p, p], { lr: 1 })).toThrow(/appears more than once/);
  });
});

describe('Adam and AdamW', () => {
  const cases = [
    { name: 'Adam', decoupled: false, weightDecay: 0 },
    { name: 'Adam + L2', decoupled: false, weightDecay: 0.1 },
    { name: 'AdamW', decoupled: true, weightDecay: 0.1 },
  ];
  for (const c of cases) {
    test(`${c.name}: ${STEPS} steps with a changing lr match the bias-corrected equations`, async () => {
      const o = { beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: c.weightDecay };
      const factors = [0.5, 1, 1, 0.75, 0.25, 1];
      const baseLr = 0.02;
      for (const n of SIZES) {
        const seed = freshSeed();
        const run = makeRun(n, seed);
        const make = (p: Tensor) => (c.decoupled ? new AdamW([p], { lr: baseLr, ...o }) : new Adam([p], { lr: baseLr, ...o }));
        const got = await runGpu(run, make, factors);
        expectClose(got, adamRef(run, factors.map((f) => f * baseLr), { ...o, decoupled: c.decoupled }), TOL, `${c.name} n=${n} seed=${seed}`);
      }
    });
  }

  test('parameters that are frozen or have no gradient are skipped and get no state', async () => {
    const a = tensor([1, 2, 3]).requireGrad();
    const b = tensor([4, 5, 6]).requireGrad();
    const c = tensor([7, 8, 9]).requireGrad();
    const opt = new Adam([a, b, c], { lr: 0.5 });
    c.requiresGrad = false;
    for (let i = 0; i < 3; i++) {
      a.grad = tensor([1, 1, 1]);
      c.grad = tensor([1, 1, 1]); // a stale gradient on a frozen parameter must not be applied
      opt.step();
      opt.zeroGrad();
    }
    expect(Array.from(await values(b))).toEqual([4, 5, 6]);
    expect(Array.from(await values(c))).toEqual([7, 8, 9]);
    expect(opt.stateOf(b)).toBeUndefined();
    expect(opt.stateOf(c)).toBeUndefined();
    expect(opt.stateOf(a)!.step).toBe(3);
    // Adam's first steps move each weight by about lr against the gradient's sign.
    expectClose(await values(a), [-0.5, 0.5, 1.5], { rtol: 0, atol: 1e-5 }, 'a');
  });

  test('parameter groups take their own options; setLrFactor scales each group\'s base lr', async () => {
    const a = tensor([1, 1]).requireGrad();
    const b = tensor([1, 1]).requireGrad();
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 0.1 });
    opt.setLrFactor(0.5);
    expect(opt.paramGroups.map((g) => g.options.lr)).toEqual([0.05, 0.25]);
    a.grad = tensor([1, 2]);
    b.grad = tensor([1, 2]);
    opt.step();
    expectClose(await values(a), [0.95, 0.9], { rtol: 1e-7, atol: 0 }, 'a');
    expectClose(await values(b), [0.75, 0.5], { rtol: 1e-7, atol: 0 }, 'b');
  });

  test('stateDict → loadStateDict into a fresh optimizer continues bit for bit', async () => {
    const seed = freshSeed();
    const run = makeRun(1030, seed);
    const more = makeRun(1030, seed + 1).grads;
    const pa = tensor(Float32Array.from(run.p0)).requireGrad();
    const opt = new AdamW([pa], { lr: 0.01 });
    const stepWith = (o: T.Optimizer<T.BaseOptions>, p: Tensor, g: Float64Array) => {
      p.grad = tensor(Float32Array.from(g));
      o.step();
      o.zeroGrad();
    };
    for (const g of run.grads) stepWith(opt, pa, g);
    const pb = tensor(await pa.data()).requireGrad();
    const restored = new AdamW([pb], { lr: 123 });
    restored.loadStateDict(opt.stateDict());
    expect(restored.lr).toBe(0.01);
    expect(restored.stateOf(pb)!.step).toBe(STEPS);
    for (const g of more) {
      stepWith(opt, pa, g);
      stepWith(restored, pb, g);
    }
    expect(await values(pb)).toEqual(await values(pa));
    expect(() => new SGD([pb], { lr: 1 }).loadStateDict(opt.stateDict())).toThrow(/SGD.loadStateDict: the state dict is from AdamW, not SGD/);
    expect(() => new AdamW([pb, T.zeros([1]).requireGrad()], { lr: 1 }).loadStateDict(opt.stateDict())).toThrow(
      /saved groups hold \[1\] parameters, this optimizer's \[2\]/,
    );
    expect(() => new AdamW([T.zeros([3]).requireGrad()], { lr: 1 }).loadStateDict(opt.stateDict())).toThrow(
      /parameter 0 exp_avg(_sq)?: shape \[1030\], parameter \[3\]/,
    );
  });

  test('a loss scale of 2^10 (the f16 hook) divided out in the kernel gives bit-identical weights', async () => {
    const train = async (scale: number) => {
      const m = new Sequential(new Linear(5, 6, { seed: 1 }), new ReLU(), new Linear(6, 3, { seed: 2 }));
      const opt = new Adam(m.parameters(), { lr: 0.01 });
      opt.lossScaler = { scale };
      const x = tensor(Float32Array.from({ length: 20 }, (_, i) => Math.cos(i)), [4, 5]);
      const y = tensor(Int32Array.from([0, 2, 1, 2]));
      for (let i = 0; i < 4; i++) {
        opt.zeroGrad();
        T.tidy(() => T.mul(crossEntropy(m.forward(x), y), scale).backward());
        opt.step();
      }
      return Promise.all(m.parameters().map(values));
    };
    expect(await train(1024)).toEqual(await train(1));
  });
});

describe('clipGradNorm', () => {
  test('scales all gradients by max/(norm + 1e-6) when the global norm is larger, returns the norm', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const gs = [f32(randomArray(7, rng)), f32(randomArray(300, rng)), f32(randomArray(1, rng))];
    const ps = gs.map((g) => T.zeros([g.length]).requireGrad());
    const noGrad = T.zeros([3]).requireGrad();
    ps.forEach((p, i) => (p.grad = tensor(Float32Array.from(gs[i]))));
    const norm = Math.sqrt(gs.reduce((s, g) => s + g.reduce((a, v) => a + v * v, 0), 0));
    const maxNorm = norm / 3;
    const got = clipGradNorm([...ps, noGrad], maxNorm);
    expectClose([await got.item()], [norm], { rtol: 1e-6, atol: 0 }, `norm seed=${seed}`);
    const coef = maxNorm / (norm + 1e-6);
    for (let i = 0; i < ps.length; i++) expectClose(await values(ps[i].grad!), gs[i].map((v) => v * coef), { rtol: 2e-6, atol: 1e-7 }, `grad ${i}`);
    expect(noGrad.grad).toBeNull();
    // Under the limit: unchanged, bit for bit.
    const before = await Promise.all(ps.map((p) => values(p.grad!)));
    clipGradNorm(ps, 1e6);
    for (let i = 0; i < ps.length; i++) expect(await values(ps[i].grad!)).toEqual(before[i]);
  });

  test('gradients that share one buffer (from add\'s backward) are each scaled once', async () => {
    const a = T.zeros([4]).requireGrad();
    const b = T.zeros([4]).requireGrad();
    T.sum(T.mul(T.add(a, b), tensor([3, 0, 0, 4]))).backward();
    // Each gradient is [3, 0, 0, 4]: global norm sqrt(50).
    const norm = await clipGradNorm([a, b], 1).item();
    expectClose([norm], [Math.sqrt(50)], { rtol: 1e-6, atol: 0 }, 'norm');
    const c = 1 / (Math.sqrt(50) + 1e-6);
    expectClose(await values(a.grad!), [3 * c, 0, 0, 4 * c], { rtol: 1e-6, atol: 0 }, 'a');
    expectClose(await values(b.grad!), [3 * c, 0, 0, 4 * c], { rtol: 1e-6, atol: 0 }, 'b');
  });
});

describe('learning-rate schedules', () => {
  test('constant, linear warmup and cosine with warmup follow their closed forms', () => {
    expect([0, 5, 1000].map(constantSchedule())).toEqual([1, 1, 1]);
    const warm = linearWarmup(4);
    expect([0, 1, 2, 3, 4, 100].map(warm)).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    const cos = cosineWithWarmup(10, 110);
    for (const s of [0, 3, 9, 10, 35, 60, 85, 109, 110, 200]) {
      const expected = s < 10 ? s / 10 : 0.5 * (1 + Math.cos((Math.PI * Math.min(1, (s - 10) / 100)))) ;
      expect(cos(s)).toBeCloseTo(expected, 14);
    }
    expect(cos(60)).toBeCloseTo(0.5, 14);
    const floored = cosineWithWarmup(0, 100, { minFactor: 0.1 });
    expect(floored(0)).toBe(1);
    expect(floored(100)).toBeCloseTo(0.1, 14);
    expect(floored(50)).toBeCloseTo(0.55, 14);
    expect(() => cosineWithWarmup(10, 5)).toThrow(/totalSteps 5 is shorter than warmupSteps 10/);
  });
});

describe('EMA', () => {
  test('shadow follows s ← s − (1 − decay)(s − p) over changing weights; copyTo, store and restore', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const m = new Linear(3, 5, { seed });
    m.bias!.requiresGrad = false; // frozen parameters are not tracked
    const ema = new EMA(m, { decay: emaWarmupDecay(0.9) });
    expect([...ema.shadow.keys()]).toEqual(['weight']);
    let shadow = await values(m.weight);
    for (let k = 0; k < 5; k++) {
      const w = f32(randomArray(15, rng));
      m.loadStateDict({ weight: tensor(Float32Array.from(w), [5, 3]), bias: m.bias! });
      const decay = Math.min(0.9, (1 + k) / (10 + k));
      expect(ema.currentDecay()).toBe(decay);
      ema.update();
      shadow = shadow.map((s, i) => s - (1 - decay) * (s - w[i]));
    }
    expect(ema.updates).toBe(5);
    expectClose(await values(ema.shadow.get('weight')!), shadow, { rtol: 1e-6, atol: 1e-7 }, `shadow seed=${seed}`);
    const live = await values(m.weight);
    ema.store(m);
    ema.copyTo(m);
    expect(await values(m.weight)).toEqual(await values(ema.shadow.get('weight')!));
    ema.restore(m);
    expect(await values(m.weight)).toEqual(live);
    expect(() => ema.restore(m)).toThrow(/nothing stored/);
    // withAveraged: fn sees the shadow; the live weights come back, also when fn throws.
    const seen = await ema.withAveraged(m, () => values(m.weight));
    expect(seen).toEqual(await values(ema.shadow.get('weight')!));
    expect(await values(m.weight)).toEqual(live);
    await expect(ema.withAveraged(m, () => Promise.reject(new Error('measure failed')))).rejects.toThrow('measure failed');
    expect(await values(m.weight)).toEqual(live);
    // State dict round trip into a second EMA.
    const other = new EMA(m);
    other.loadStateDict(ema.stateDict());
    expect(other.updates).toBe(5);
    expect(await values(other.shadow.get('weight')!)).toEqual(await values(ema.shadow.get('weight')!));
    expect(() => ema.copyTo(new Linear(3, 4))).toThrow(/EMA.copyTo: the model lacks \(or mis-shapes\) the averaged parameters weight/);
  });
});

describe('BestWeights', () => {
  test('keeps the weights of the lowest score bit for bit, counts offers since it, restores in place', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const m = new Linear(4, 3, { seed });
    const best = new BestWeights([m.weight, m.bias!]);
    expect(() => best.restore()).toThrow(/no score was offered yet/);
    const set = () => {
      const w = f32(randomArray(12, rng));
      const b = f32(randomArray(3, rng));
      m.loadStateDict({ weight: tensor(Float32Array.from(w), [3, 4]), bias: tensor(Float32Array.from(b), [3]) });
      return [w, b];
    };
    const kept: ArrayLike<number>[][] = [];
    const scores = [3, 2, 2.5, 1, 1, 4];
    const improved = [];
    for (const [step, score] of scores.entries()) {
      const wb = set();
      improved.push(best.offer(score, step));
      if (improved.at(-1)) kept.push(wb);
    }
    // Ties do not count as improvements: the first of two equal scores is kept.
    expect(improved).toEqual([true, true, false, true, false, false]);
    expect([best.best, best.bestStep, best.sinceBest]).toEqual([1, 3, 2]);
    const weight = m.weight;
    best.restore();
    expect(m.weight).toBe(weight);
    expect(await values(m.weight)).toEqual(kept.at(-1)![0]);
    expect(await values(m.bias!)).toEqual(kept.at(-1)![1]);
    expect(() => best.offer(NaN, 6)).toThrow(/BestWeights.offer: the score at step 6 is NaN/);
    best.dispose();
  });
});

describe('training loop memory', () => {
  test('500 steps of forward + backward + clip + AdamW + EMA keep tensors and buffers flat', async () => {
    // The kernels are checked with poisoning above; here it would only cost a submit per allocation.
    T.runtime().poisonOutputs = false;
    const model = new Sequential(new Linear(8, 32, { seed: 1 }), new ReLU(), new Linear(32, 4, { seed: 2 }));
    const opt = new AdamW(model.parameters(), { lr: 1e-2 });
    const ema = new EMA(model, { decay: 0.99 });
    const x = tensor(Float32Array.from({ length: 64 * 8 }, (_, i) => Math.sin(i * 0.37)), [64, 8]);
    const y = tensor(Int32Array.from({ length: 64 }, (_, i) => (i * 7) % 4));
    const losses: number[] = [];
    let atStep10: T.MemoryInfo | null = null;
    for (let step = 1; step <= 500; step++) {
      opt.zeroGrad();
      const loss = T.tidy(() => {
        const l = crossEntropy(model.forward(x), y);
        l.backward();
        return l;
      });
      clipGradNorm(model.parameters(), 1).dispose();
      opt.step();
      ema.update();
      if (step % 100 === 0) losses.push(await loss.item());
      loss.dispose();
      if (step === 10) atStep10 = memory();
    }
    const end = memory();
    expect({ tensors: end.tensors, live: end.liveBuffers, pooled: end.pooledBuffers }).toEqual({
      tensors: atStep10!.tensors,
      live: atStep10!.liveBuffers,
      pooled: atStep10!.pooledBuffers,
    });
    // Learnable labels: the loss must fall.
    expect(losses[4]).toBeLessThan(losses[0]);
    T.runtime().poisonOutputs = true;
  });
});
