/**
 * API behaviour PyTorch users expect: backward(gradTensor), half-precision conversions (the
 * safetensors files are in safetensors-dtypes.node.test.ts), unknown option keys refused, tanh-approximate GELU, and NumPy batch broadcasting in
 * matmul (forward and gradients), each against an independent reference (closed forms, known bit
 * patterns, float64 loops and finite differences).
 */
import { describe, expect, test } from 'vitest';
import {
  Adam,
  AdamW,
  bf16BitsToF32,
  Conv2d,
  cosineWithWarmup,
  EMA,
  LossLog,
  ProgressBar,
  Embedding,
  f16BitsToF32,
  f32ToF16Bits,
  GELU,
  gelu,
  GroupNorm,
  Linear,
  matmul,
  mul,
  SGD,
  sum,
  tensor,
} from '@transfuse/core';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';

useGpu();

describe('backward(gradient tensor) as in PyTorch', () => {
  test('sum(a*a).backward(tensor(5)) gives a.grad = 2·a·5 = [10, 20, 30]', async () => {
    for (const g of [tensor(5), tensor([5]), tensor([[5]])]) {
      const a = tensor([1, 2, 3]).requireGrad();
      sum(mul(a, a)).backward(g);
      expect(Array.from(await values(a.grad!))).toEqual([10, 20, 30]);
    }
  });

  test('a non-scalar output takes a gradient of its shape; the options form still works', async () => {
    const a = tensor([1, 2, 3]).requireGrad();
    mul(a, a).backward(tensor([1, 2, 3]));
    expect(Array.from(await values(a.grad!))).toEqual([2, 8, 18]); // 2·a·gy
    const b = tensor([1, 2, 3]).requireGrad();
    const y = sum(mul(b, b));
    y.backward({ grad: tensor(5), retainGraph: true });
    y.backward(tensor(1));
    expect(Array.from(await values(b.grad!))).toEqual([12, 24, 36]); // accumulated: 10·a/1 + 2·a
  });

  test('a number or an unknown option is an error, not silently ignored', () => {
    const a = tensor([1, 2, 3]).requireGrad();
    const y = sum(mul(a, a));
    expect(() => y.backward(5 as never)).toThrow(/backward: pass the output's gradient as a Tensor or \{ grad, retainGraph \}, got 5/);
    expect(() => y.backward({ gradient: tensor(5) } as never)).toThrow(/backward: unknown option 'gradient' \(known: grad, retainGraph\)/);
    expect(() => mul(a, a).backward(tensor([1, 2]))).toThrow(/grad of shape \[2\] does not match the output's \[3\]/);
  });
});

describe('unknown option keys throw, listing the known ones', () => {
  test('optimizers (with a hint for PyTorch betas), modules', () => {
    const ps = [tensor([1, 2]).requireGrad()];
    expect(() => new Adam(ps, { betas: [0.9, 0.99] } as never)).toThrow(/Adam: unknown option 'betas' \(known: lr, beta1, beta2, eps, weightDecay\); PyTorch's betas=\(b1, b2\) is \{ beta1: b1, beta2: b2 \} here/);
    expect(() => new Adam(ps, { lrr: 1e-3 } as never)).toThrow(/Adam: unknown option 'lrr' \(known: lr, beta1, beta2, eps, weightDecay\)/);
    expect(() => new AdamW(ps, { weight_decay: 0.1 } as never)).toThrow(/AdamW: unknown option 'weight_decay'/);
    expect(() => new SGD(ps, { lr: 0.1, momentun: 0.9 } as never)).toThrow(/SGD: unknown option 'momentun' \(known: lr, momentum, dampening, weightDecay, nesterov\)/);
    expect(() => new Adam([{ params: ps, lR: 1 } as never])).toThrow(/Adam: group 0: unknown option 'lR'/);
    expect(() => new Linear(2, 2, { bais: false } as never)).toThrow(/Linear: unknown option 'bais' \(known: bias, seed\)/);
    expect(() => new Conv2d(1, 1, 3, { pad: 1 } as never)).toThrow(/Conv2d: unknown option 'pad' \(known: stride, padding, dilation, groups, bias, seed\)/);
    expect(() => new GroupNorm(1, 2, { epsilon: 1e-5 } as never)).toThrow(/GroupNorm: unknown option 'epsilon' \(known: eps, affine\)/);
    expect(() => new Embedding(3, 2, { padding_idx: 0 } as never)).toThrow(/Embedding: unknown option 'padding_idx' \(known: seed\)/);
    expect(() => new GELU({ approx: 'tanh' } as never)).toThrow(/GELU: unknown option 'approx' \(known: approximate\)/);
    expect(() => new GELU({ approximate: 'fast' } as never)).toThrow(/GELU: approximate must be 'none' or 'tanh', got 'fast'/);
  });

  test('EMA, schedules, progress and loss logs', () => {
    const m = new Linear(2, 2, { seed: 1 });
    expect(() => new EMA(m, { beta: 0.9 } as never)).toThrow(/EMA: unknown option 'beta' \(known: decay\)/);
    expect(() => cosineWithWarmup(1, 10, { min_factor: 0.1 } as never)).toThrow(/cosineWithWarmup: unknown option 'min_factor' \(known: minFactor\)/);
    expect(() => new ProgressBar(10, { title: 'x' } as never)).toThrow(/ProgressBar: unknown option 'title' \(known: label, stream, tty, everyFraction, everySeconds, now\)/);
    expect(() => new LossLog('myTrainer', { steps: 10, label: null, every: 5 } as never)).toThrow(/myTrainer \(LossLog\): unknown option 'every' \(known: steps, logEvery, label, name, hint, onLog\)/);
    // Keys set to undefined are not options (spreading partial settings is fine).
    expect(() => new EMA(m, { decay: undefined })).not.toThrow();
    m.dispose();
  });
});

/** GELU's tanh form and its derivative in float64. */
const K = Math.sqrt(2 / Math.PI);
const geluTanh64 = (x: number) => 0.5 * x * (1 + Math.tanh(K * (x + 0.044715 * x ** 3)));
const geluTanhGrad64 = (x: number) => {
  const t = Math.tanh(K * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * 0.044715 * x * x);
};

describe("gelu(x, { approximate: 'tanh' })", () => {
  test('matches 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))) in float64, and its gradient the float64 derivative and finite differences', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const n = 1003; // odd: not a multiple of the vec4 width or the workgroup
    const x = f32(Float64Array.from({ length: n }, (_, i) => (i < 8 ? [0, -0.5, 0.5, -8, 8, 30, -30, 1e20][i] : rng(-6, 6))));
    const xt = tensor(Float32Array.from(x)).requireGrad();
    const gy = f32(randomArray(n, rng));
    const y = gelu(xt, { approximate: 'tanh' });
    // float32 evaluation: a few ulp of x times the slope (<= 1.13) plus WGSL tanh's error (~1e-6 absolute).
    expectClose(await values(y), Array.from(x, geluTanh64), { atol: 2e-6, rtol: 2e-6 }, `gelu tanh (seed ${seed})`);
    y.backward(tensor(Float32Array.from(gy)));
    const grad = await values(xt.grad!);
    expectClose(grad, Array.from(x, (v, i) => geluTanhGrad64(v) * gy[i]), { atol: 1e-5, rtol: 1e-5 }, `gelu tanh grad (seed ${seed})`);
    // The derivative formula itself, against central differences of the float64 function (h = 1e-5: error ~ h² + 1e-16/h).
    for (const v of x.slice(0, 208).filter((v) => Math.abs(v) < 100)) expect(Math.abs(geluTanhGrad64(v) - (geluTanh64(v + 1e-5) - geluTanh64(v - 1e-5)) / 2e-5)).toBeLessThan(1e-8);
    // It differs from the exact (erf) form by up to ~1e-3, so the two are really different functions.
    const exact = await values(gelu(tensor([1.5])));
    expect(Math.abs(exact[0] - geluTanh64(1.5))).toBeGreaterThan(1e-5);
  });
});

/** Float64 batched matmul with NumPy broadcasting of the batch axes. */
function matmul64(a: Float64Array, as: number[], b: Float64Array, bs: number[]): { y: Float64Array; shape: number[] } {
  const [M, K] = as.slice(-2);
  const N = bs[bs.length - 1];
  const ba = as.slice(0, -2);
  const bb = bs.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const pad = (s: number[]) => [...Array(rank - s.length).fill(1), ...s];
  const pa = pad(ba);
  const pb = pad(bb);
  const batch = pa.map((d, i) => Math.max(d, pb[i]));
  const total = batch.reduce((p, d) => p * d, 1);
  const y = new Float64Array(total * M * N);
  const offset = (idx: number[], s: number[]) => idx.reduce((o, v, i) => o * s[i] + (s[i] === 1 ? 0 : v), 0);
  for (let t = 0; t < total; t++) {
    const idx: number[] = [];
    let r = t;
    for (let i = rank - 1; i >= 0; i--) {
      idx[i] = r % batch[i];
      r = Math.floor(r / batch[i]);
    }
    const oa = offset(idx, pa) * M * K;
    const ob = offset(idx, pb) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[oa + m * K + k] * b[ob + k * N + n];
        y[t * M * N + m * N + n] = s;
      }
    }
  }
  return { y, shape: [...batch, M, N] };
}

describe('matmul broadcasts batch axes as NumPy does', () => {
  const shapes: [number[], number[]][] = [
    [[3, 1, 17, 33], [5, 33, 9]],
    [[2, 1, 5, 7], [1, 3, 7, 4]],
    [[4, 1, 3, 5], [4, 6, 5, 2]],
    [[7, 6], [2, 3, 6, 5]],
  ];
  for (const [as, bs] of shapes) {
    test(`[${as}] · [${bs}]: forward, and gradients summed back to each operand's batch shape, against float64`, async () => {
      const seed = freshSeed();
      const rng = seededRandom(seed);
      const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
      const a = f32(randomArray(size(as), rng));
      const b = f32(randomArray(size(bs), rng));
      const ref = matmul64(a, as, b, bs);
      const at = tensor(Float32Array.from(a), as).requireGrad();
      const bt = tensor(Float32Array.from(b), bs).requireGrad();
      const y = matmul(at, bt);
      expect(y.shape).toEqual(ref.shape);
      // |error| <= K · 2^-24 · Σ|a||b| <= 33 · 6e-8 · 33 for entries in [-1, 1]: 1e-4 covers it.
      expectClose(await values(y), ref.y, { atol: 1e-4, rtol: 0 }, `forward (seed ${seed})`);
      // loss = Σ y ⊙ G, so dL/dy = G; each gradient is checked against central differences of the float64 loss.
      const G = f32(randomArray(size(ref.shape), rng));
      y.backward(tensor(Float32Array.from(G), ref.shape));
      const eps = 1e-3;
      const lossAt = (a2: Float64Array, b2: Float64Array) => matmul64(a2, as, b2, bs).y.reduce((s, v, i) => s + v * G[i], 0);
      // Loss is bilinear, so central differences are exact up to rounding: check a sample of entries of each gradient.
      const ga = await values(at.grad!);
      const gb = await values(bt.grad!);
      for (const [grad, base, which] of [[ga, a, 'a'], [gb, b, 'b']] as const) {
        for (let j = 0; j < 12; j++) {
          const i = Math.floor(rng() * base.length);
          const plus = Float64Array.from(base);
          const minus = Float64Array.from(base);
          plus[i] += eps;
          minus[i] -= eps;
          const fd = which === 'a' ? (lossAt(plus, b) - lossAt(minus, b)) / (2 * eps) : (lossAt(a, plus) - lossAt(a, minus)) / (2 * eps);
          expect(Math.abs(grad[i] - fd), `d${which}[${i}] (seed ${seed})`).toBeLessThan(2e-4);
        }
      }
      expect(at.grad!.shape).toEqual(as);
      expect(bt.grad!.shape).toEqual(bs);
    });
  }
});
