/**
 * nn layers: forward and backward against float64 references (backward through central finite
 * differences of the reference, or closed forms), PyTorch state-dict naming, strict loading,
 * freezing, initialisation.
 */
import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import {
  Adam,
  Conv2d,
  Downsample2d,
  Dropout,
  Embedding,
  GroupNorm,
  LayerNorm,
  Layer,
  Linear,
  Module,
  ModuleList,
  Sequential,
  SiLU,
  SpatialAttention,
  Upsample2d,
  crossEntropy,
  mseLoss,
  parameter,
  tensor,
  timestepEmbedding,
  type Tensor,
} from '@transfuse/core';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';
import { conv2dRef, convOutSize, fdGrad, groupNormRef, layerNormRef, linearRef, spatialAttentionRef, type ConvGeom } from './nn-reference.js';

useGpu();

const rngFor = (seed: number) => seededRandom(seed);
const upload = (a: Float64Array, shape: number[]) => tensor(Float32Array.from(a), shape);

/** Runs loss = Σ y·r and backward; returns y and the gradients of `wrt` (in order). */
async function forwardBackward(f: () => Tensor, r: Float64Array, wrt: Tensor[]): Promise<{ y: Float64Array; grads: Float64Array[] }> {
  for (const t of wrt) {
    t.grad?.dispose();
    t.grad = null;
  }
  const y = f();
  const rt = upload(r, [...y.shape]);
  T.sum(T.mul(y, rt)).backward();
  const out = { y: await values(y), grads: await Promise.all(wrt.map((t) => values(t.grad!))) };
  return out;
}

// float32 forward passes of a few dozen terms, and gradients through normalisation: stated per test.
const FWD = { rtol: 1e-5, atol: 1e-5 };
const GRAD = { rtol: 1e-4, atol: 1e-4 };

describe('Linear', () => {
  test('forward and backward on [2, 3, 5] inputs match x·Wᵀ + b and its closed-form gradients', async () => {
    const seed = freshSeed();
    const rng = rngFor(seed);
    const layer = new Linear(5, 4, { seed });
    const [rows, inF, outF] = [6, 5, 4];
    const x = f32(randomArray(rows * inF, rng));
    const r = f32(randomArray(rows * outF, rng));
    const xt = upload(x, [2, 3, inF]).requireGrad();
    const w = await values(layer.weight);
    const b = await values(layer.bias!);
    const { y, grads } = await forwardBackward(() => layer.forward(xt), r, [xt, layer.weight, layer.bias!]);
    expectClose(y, linearRef(x, w, b, rows, inF, outF), FWD, `y seed=${seed}`);
    // dx = R·W, dW = Rᵀ·x, db = Σ_rows R
    const dx = linearRef(r, Float64Array.from({ length: inF * outF }, (_, i) => w[(i % outF) * inF + Math.floor(i / outF)]), null, rows, outF, inF);
    const dw = new Float64Array(outF * inF);
    const db = new Float64Array(outF);
    for (let rr = 0; rr < rows; rr++) {
      for (let o = 0; o < outF; o++) {
        db[o] += r[rr * outF + o];
        for (let i = 0; i < inF; i++) dw[o * inF + i] += r[rr * outF + o] * x[rr * inF + i];
      }
    }
    expectClose(grads[0], dx, FWD, `dx seed=${seed}`);
    expectClose(grads[1], dw, FWD, `dW seed=${seed}`);
    expectClose(grads[2], db, FWD, `db seed=${seed}`);
  });

  test('default init is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias, reproducible by seed', async () => {
    const a = new Linear(64, 32, { seed: 7 });
    const b = new Linear(64, 32, { seed: 7 });
    const w = await values(a.weight);
    const bias = await values(a.bias!);
    const bound = 1 / Math.sqrt(64);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...bias.map(Math.abs))).toBeLessThanOrEqual(bound);
    // Uniform variance bound²/3 over 2048 draws: the sample variance is within 10%.
    const variance = w.reduce((s, v) => s + v * v, 0) / w.length;
    expect(Math.abs(variance / (bound * bound / 3) - 1)).toBeLessThan(0.1);
    expect(await values(b.weight)).toEqual(w);
    expect(await values(b.bias!)).toEqual(bias);
    // Weight and bias come from different streams.
    expect(bias.slice(0, 8)).not.toEqual(w.slice(0, 8));
    T.manualSeed(3);
    const c = await values(new Linear(8, 8).weight);
    T.manualSeed(3);
    expect(await values(new Linear(8, 8).weight)).toEqual(c);
  });
});

describe('Conv2d', () => {
  const cases: { name: string; g: ConvGeom; bias: boolean }[] = [
    { name: '3x3 pad 1', g: { n: 2, cin: 3, h: 5, w: 4, cout: 4, kh: 3, kw: 3, stride: 1, padding: 1, dilation: 1, groups: 1 }, bias: true },
    { name: 'stride 2, groups 2', g: { n: 1, cin: 4, h: 6, w: 5, cout: 6, kh: 3, kw: 3, stride: 2, padding: 1, dilation: 1, groups: 2 }, bias: true },
    { name: 'dilation 2, no bias', g: { n: 1, cin: 2, h: 6, w: 6, cout: 3, kh: 3, kw: 3, stride: 1, padding: 2, dilation: 2, groups: 1 }, bias: false },
  ];
  for (const { name, g, bias } of cases) {
    test(`${name}: forward against direct convolution, gradients against finite differences`, async () => {
      const seed = freshSeed();
      const rng = rngFor(seed);
      const conv = new Conv2d(g.cin, g.cout, g.kh, { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups, bias, seed });
      const [ho, wo] = convOutSize(g);
      const x = f32(randomArray(g.n * g.cin * g.h * g.w, rng));
      const r = f32(randomArray(g.n * g.cout * ho * wo, rng));
      const xt = upload(x, [g.n, g.cin, g.h, g.w]).requireGrad();
      const w = await values(conv.weight);
      const b = bias ? await values(conv.bias!) : null;
      const wrt = bias ? [xt, conv.weight, conv.bias!] : [xt, conv.weight];
      const { y, grads } = await forwardBackward(() => conv.forward(xt), r, wrt);
      expect(y.length).toBe(g.n * g.cout * ho * wo);
      expectClose(y, conv2dRef(x, w, b, g), FWD, `y seed=${seed}`);
      const ref = (ins: Float64Array[]) => conv2dRef(ins[0], ins[1], bias ? ins[2] : null, g);
      const inputs = bias ? [x, w, b!] : [x, w];
      for (let i = 0; i < wrt.length; i++) expectClose(grads[i], fdGrad(ref, inputs, r, i), GRAD, `grad ${i} seed=${seed}`);
    });
  }

  test('fan-in of the init counts in/groups·kh·kw', async () => {
    const conv = new Conv2d(8, 4, 3, { groups: 2, seed: 1 });
    expect(conv.weight.shape).toEqual([4, 4, 3, 3]);
    const w = await values(conv.weight);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(36));
    expect(() => new Conv2d(6, 4, 3, { groups: 4 })).toThrow(/divisible by groups 4/);
  });
});

describe('Upsample2d and Downsample2d', () => {
  test('Upsample2d is nearest ×2 then a 3x3 conv named conv; Downsample2d a stride-2 conv', async () => {
    const seed = freshSeed();
    const rng = rngFor(seed);
    const up = new Upsample2d(2, { outChannels: 3, seed });
    const down = new Downsample2d(3, { seed: seed + 1 });
    expect([...up.stateDict().keys()]).toEqual(['conv.weight', 'conv.bias']);
    expect([...down.stateDict().keys()]).toEqual(['conv.weight', 'conv.bias']);
    const x = f32(randomArray(2 * 2 * 3 * 3, rng));
    const y = up.forward(upload(x, [2, 2, 3, 3]));
    expect(y.shape).toEqual([2, 3, 6, 6]);
    const big = new Float64Array(2 * 2 * 6 * 6);
    for (let i = 0; i < big.length; i++) {
      const [xx, yy, c] = [i % 6, Math.floor(i / 6) % 6, Math.floor(i / 36)];
      big[i] = x[c * 9 + Math.floor(yy / 2) * 3 + Math.floor(xx / 2)];
    }
    const g = { n: 2, cin: 2, h: 6, w: 6, cout: 3, kh: 3, kw: 3, stride: 1, padding: 1, dilation: 1, groups: 1 };
    const yRef = conv2dRef(big, await values(up.conv!.weight), await values(up.conv!.bias!), g);
    expectClose(await values(y), yRef, FWD, `upsample seed=${seed}`);
    const z = down.forward(y);
    expect(z.shape).toEqual([2, 3, 3, 3]);
    const zRef = conv2dRef(yRef, await values(down.conv!.weight), await values(down.conv!.bias!), { ...g, cin: 3, stride: 2 });
    expectClose(await values(z), zRef, { rtol: 1e-4, atol: 1e-5 }, `downsample seed=${seed}`);
    const pool = new Downsample2d(3, { useConv: false });
    expect(pool.parameters()).toHaveLength(0);
    const p = await values(pool.forward(upload(yRef, [2, 3, 6, 6])));
    expectClose([p[0]], [(yRef[0] + yRef[1] + yRef[6] + yRef[7]) / 4], FWD, 'avg pool');
  });
});

describe('GroupNorm and LayerNorm', () => {
  test('GroupNorm forward and gradients (x, weight, bias) against the float64 definition', async () => {
    const seed = freshSeed();
    const rng = rngFor(seed);
    const [n, c, h, w, groups] = [2, 6, 3, 2, 3];
    const gn = new GroupNorm(groups, c, { eps: 1e-5 });
    const x = f32(randomArray(n * c * h * w, rng, -2, 3));
    const gw = f32(randomArray(c, rng, 0.5, 1.5));
    const gb = f32(randomArray(c, rng));
    gn.loadStateDict({ weight: upload(gw, [c]), bias: upload(gb, [c]) });
    const r = f32(randomArray(x.length, rng));
    const xt = upload(x, [n, c, h, w]).requireGrad();
    const { y, grads } = await forwardBackward(() => gn.forward(xt), r, [xt, gn.weight!, gn.bias!]);
    const ref = (ins: Float64Array[]) => groupNormRef(ins[0], n, c, h * w, groups, ins[1], ins[2], 1e-5);
    expectClose(y, ref([x, gw, gb]), FWD, `y seed=${seed}`);
    for (let i = 0; i < 3; i++) expectClose(grads[i], fdGrad(ref, [x, gw, gb], r, i), GRAD, `grad ${i} seed=${seed}`);
  });

  test('GroupNorm → SiLU: the fused op and the unfused composition both match the float64 definition', async () => {
    // Rows of (sample, group) below 128 take the workgroup-per-row kernel, from 128 on the
    // thread-per-row one; odd channel and spatial counts, with and without the affine transform.
    for (const [n, c, h, w, groups, affine] of [
      [3, 10, 5, 3, 5, true],
      [67, 6, 3, 3, 2, true],
      [5, 9, 7, 1, 3, false],
    ] as const) {
      const seed = freshSeed();
      const rng = rngFor(seed);
      const gn = new GroupNorm(groups, c, { eps: 1e-5, affine });
      const x = f32(randomArray(n * c * h * w, rng, -2, 3));
      const gw = f32(randomArray(c, rng, 0.5, 1.5));
      const gb = f32(randomArray(c, rng));
      if (affine) gn.loadStateDict({ weight: upload(gw, [c]), bias: upload(gb, [c]) });
      const r = f32(randomArray(x.length, rng));
      const xt = upload(x, [n, c, h, w]).requireGrad();
      const params = affine ? [xt, gn.weight!, gn.bias!] : [xt];
      const inputs = affine ? [x, gw, gb] : [x];
      const ref = (ins: Float64Array[]) =>
        groupNormRef(ins[0], n, c, h * w, groups, affine ? ins[1] : null, affine ? ins[2] : null, 1e-5).map((z) => z / (1 + Math.exp(-z)));
      const want = ref(inputs);
      const wantGrads = inputs.map((_, i) => fdGrad(ref, inputs, r, i));
      for (const [how, f] of [
        ['fused', () => gn.forward(xt, 'silu')],
        ['unfused', () => T.silu(gn.forward(xt))],
      ] as const) {
        const { y, grads } = await forwardBackward(f, r, params);
        const at = `${how} [${n}, ${c}, ${h}, ${w}] groups=${groups} affine=${affine} seed=${seed}`;
        expectClose(y, want, FWD, `y ${at}`);
        grads.forEach((g, i) => expectClose(g, wantGrads[i], GRAD, `grad ${i} ${at}`));
      }
    }
  });

  test('GroupNorm → SiLU gradients of weight and bias alone, on an input that needs none', async () => {
    const seed = freshSeed();
    const rng = rngFor(seed);
    const [n, c, h, w, groups] = [4, 6, 3, 5, 2];
    const gn = new GroupNorm(groups, c);
    const x = f32(randomArray(n * c * h * w, rng, -2, 3));
    const gw = f32(randomArray(c, rng, 0.5, 1.5));
    const gb = f32(randomArray(c, rng));
    gn.loadStateDict({ weight: upload(gw, [c]), bias: upload(gb, [c]) });
    const r = f32(randomArray(x.length, rng));
    const xt = upload(x, [n, c, h, w]);
    const { grads } = await forwardBackward(() => gn.forward(xt, 'silu'), r, [gn.weight!, gn.bias!]);
    expect(xt.grad).toBeNull();
    const ref = (ins: Float64Array[]) => groupNormRef(ins[0], n, c, h * w, groups, ins[1], ins[2], 1e-5).map((z) => z / (1 + Math.exp(-z)));
    for (let i = 0; i < 2; i++) expectClose(grads[i], fdGrad(ref, [x, gw, gb], r, i + 1), GRAD, `grad ${i + 1} seed=${seed}`);
  });

  test('LayerNorm over the last axis: forward and gradients', async () => {
    const seed = freshSeed();
    const rng = rngFor(seed);
    const [rows, len] = [4, 7];
    const ln = new LayerNorm(len);
    const x = f32(randomArray(rows * len, rng, -3, 3));
    const lw = f32(randomArray(len, rng, 0.5, 1.5));
    const lb = f32(randomArray(len, rng));
    ln.loadStateDict(new Map([['weight', upload(lw, [len])], ['bias', upload(lb, [len])]]));
    const r = f32(randomArray(x.length, rng));
    const xt = upload(x, [2, 2, len]).requireGrad();
    const { y, grads } = await forwardBackward(() => ln.forward(xt), r, [xt, ln.weight!, ln.bias!]);
    const ref = (ins: Float64Array[]) => layerNormRef(ins[0], len, ins[1], ins[2], 1e-5);
    expectClose(y, ref([x, lw, lb]), FWD, `y seed=${seed}`);
    for (let i = 0; i < 3; i++) expectClose(grads[i], fdGrad(ref, [x, lw, lb], r, i), GRAD, `grad ${i} seed=${seed}`);
  });

  test('norm layers start at weight 1, bias 0 and refuse bad channel counts', async () => {
    const gn = new GroupNorm(2, 4);
    expect(Array.from(await values(gn.weight!))).toEqual([1, 1, 1, 1]);
    expect(Array.from(await values(gn.bias!))).toEqual([0, 0, 0, 0]);
    expect(() => new GroupNorm(3, 4)).toThrow(/multiple of numGroups 3/);
    expect(() => gn.forward(T.zeros([1, 6, 2, 2]))).toThrow(/expected 4 channels.*\[1, 6, 2, 2\]/);
    expect(() => new LayerNorm(3).forward(T.zeros([2, 4]))).toThrow(/\[2, 4\] does not end with the normalized shape \[3\]/);
  });
});

describe('Embedding', () => {
  test('picks rows by int32 index of any shape; repeated indices accumulate gradients', async () => {
    const seed = freshSeed();
    const rng = rngFor(seed);
    const emb = new Embedding(5, 3, { seed });
    const table = await values(emb.weight);
    const idx = [4, 0, 4, 2, 1, 4];
    const r = f32(randomArray(idx.length * 3, rng));
    const { y, grads } = await forwardBackward(() => emb.forward(tensor(Int32Array.from(idx), [2, 3])), r, [emb.weight]);
    expect(y.length).toBe(18);
    expectClose(y, idx.flatMap((i) => [...table.slice(i * 3, i * 3 + 3)]), { rtol: 0, atol: 0 }, 'rows');
    const dw = new Float64Array(15);
    idx.forEach((row, k) => {
      for (let d = 0; d < 3; d++) dw[row * 3 + d] += r[k * 3 + d];
    });
    expectClose(grads[0], dw, FWD, `dW seed=${seed}`);
    // N(0, 1) init: 4096 draws have mean within 0.1 and variance within 15% of 1.
    const big = await values(new Embedding(1024, 4, { seed }).weight);
    const mean = big.reduce((s, v) => s + v, 0) / big.length;
    const variance = big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length;
    expect(Math.abs(mean)).toBeLessThan(0.1);
    expect(Math.abs(variance - 1)).toBeLessThan(0.15);
    expect(() => emb.forward(T.zeros([3]))).toThrow(/Embedding: indices must be int32, got float32 of shape \[3\]/);
  });
});

describe('SpatialAttention', () => {
  test('forward and gradients (input and every weight) against the float64 definition', async () => {
    const seed = freshSeed();
    const rng = rngFor(seed);
    const shape: [number, number, number, number] = [2, 4, 2, 3];
    const [b, c, h, w] = shape;
    const opts = { heads: 2, dimHead: 2, groups: 2, eps: 1e-5, rescale: 2 };
    const attn = new SpatialAttention(c, { heads: 2, normGroups: 2, rescaleOutputFactor: 2, seed });
    expect([...attn.stateDict().keys()]).toEqual([
      'group_norm.weight',
      'group_norm.bias',
      'to_q.weight',
      'to_q.bias',
      'to_k.weight',
      'to_k.bias',
      'to_v.weight',
      'to_v.bias',
      'to_out.0.weight',
      'to_out.0.bias',
    ]);
    // Non-trivial norm affine so its gradients are exercised too.
    attn.group_norm.loadStateDict({ weight: upload(f32(randomArray(c, rng, 0.5, 1.5)), [c]), bias: upload(f32(randomArray(c, rng)), [c]) });
    const params = attn.parameters();
    const weights = await Promise.all(params.map(values));
    const x = f32(randomArray(b * c * h * w, rng, -2, 2));
    const r = f32(randomArray(x.length, rng));
    const xt = upload(x, shape).requireGrad();
    const { y, grads } = await forwardBackward(() => attn.forward(xt), r, [xt, ...params]);
    const ref = (ins: Float64Array[]) => {
      const [gnWeight, gnBias, wq, bq, wk, bk, wv, bv, wo, bo] = ins.slice(1);
      return spatialAttentionRef(ins[0], shape, { gnWeight, gnBias, wq, bq, wk, bk, wv, bv, wo, bo }, opts);
    };
    const inputs = [x, ...weights];
    expectClose(y, ref(inputs), FWD, `y seed=${seed}`);
    for (let i = 0; i < inputs.length; i++) expectClose(grads[i], fdGrad(ref, inputs, r, i), GRAD, `grad of input ${i} seed=${seed}`);
    expect(() => attn.forward(T.zeros([1, 3, 2, 2]))).toThrow(/SpatialAttention: expected input \[B, 4, H, W\], got \[1, 3, 2, 2\]/);
  });
});

describe('timestepEmbedding', () => {
  const closedForm = (t: number[], dim: number, flip: boolean, shift: number, maxPeriod = 10000) => {
    const half = Math.floor(dim / 2);
    return t.flatMap((tv) => {
      const f = Array.from({ length: half }, (_, j) => Math.exp((-Math.log(maxPeriod) * j) / (half - shift)));
      const sin = f.map((fj) => Math.sin(tv * fj));
      const cos = f.map((fj) => Math.cos(tv * fj));
      return [...(flip ? [...cos, ...sin] : [...sin, ...cos]), ...(dim % 2 ? [0] : [])];
    });
  };
  for (const [dim, flip, shift] of [[8, true, 0], [8, false, 1], [7, true, 1], [32, true, 0]] as const) {
    test(`dim ${dim}, flipSinToCos ${flip}, downscaleFreqShift ${shift} matches the closed form`, async () => {
      const t = [0, 1, 17.5, 999];
      const y = timestepEmbedding(tensor(t), dim, { flipSinToCos: flip, downscaleFreqShift: shift });
      expect(y.shape).toEqual([4, dim]);
      // Arguments up to 999 rad in float32: the frequency's rounding (1 ulp ≈ 6e-8 relative) moves
      // t·f by up to 6e-5, and the kernel's sin/cos range reduction adds a little more.
      expectClose(await values(y), closedForm(t, dim, flip, shift), { rtol: 0, atol: 2e-4 }, `dim ${dim}`);
    });
  }
  test('rejects a dim too small for the shift and non-1-D input', () => {
    expect(() => timestepEmbedding(tensor([1]), 2, { downscaleFreqShift: 1 })).toThrow(/dim 2 is too small/);
    expect(() => timestepEmbedding(T.zeros([2, 1]), 8)).toThrow(/1-D float32 tensor \[B\], got float32 \[2, 1\]/);
  });
});

describe('losses', () => {
  test('crossEntropy (mean, sum, none) and its gradient softmax − onehot', async () => {
    const seed = freshSeed();
    const rng = rngFor(seed);
    const [n, k] = [5, 4];
    const logits = f32(randomArray(n * k, rng, -4, 4));
    const labels = [3, 0, 1, 3, 2];
    const lt = upload(logits, [n, k]).requireGrad();
    const lab = tensor(Int32Array.from(labels));
    const perRow = labels.map((l, i) => {
      const row = Array.from(logits.slice(i * k, i * k + k));
      const m = Math.max(...row);
      return -(row[l] - m - Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)));
    });
    const mean = crossEntropy(lt, lab);
    expectClose([await mean.item()], [perRow.reduce((s, v) => s + v, 0) / n], FWD, 'mean');
    expectClose([await crossEntropy(lt, lab, { reduction: 'sum' }).item()], [perRow.reduce((s, v) => s + v, 0)], FWD, 'sum');
    expectClose(await values(crossEntropy(lt, lab, { reduction: 'none' })), perRow, FWD, 'none');
    mean.backward();
    const grad = new Float64Array(n * k);
    for (let i = 0; i < n; i++) {
      const row = Array.from(logits.slice(i * k, i * k + k));
      const m = Math.max(...row);
      const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
      for (let j = 0; j < k; j++) grad[i * k + j] = (Math.exp(row[j] - m) / z - (j === labels[i] ? 1 : 0)) / n;
    }
    expectClose(await values(lt.grad!), grad, FWD, `grad seed=${seed}`);
    expect(() => crossEntropy(lt, tensor([1, 2]))).toThrow(/labels must be int32 \[5\] for logits \[5, 4\], got float32 \[2\]/);
  });

  test('mseLoss and its gradient 2(a − b)/n', async () => {
    const a = tensor([1, 2, 3, 4]).requireGrad();
    const loss = mseLoss(a, tensor([0, 2, 5, 4]));
    expect(await loss.item()).toBe(5 / 4);
    loss.backward();
    expect(Array.from(await values(a.grad!))).toEqual([0.5, 0, -1, 0]);
    expect(() => mseLoss(a, tensor([1]))).toThrow(/mseLoss: input \[4\] and target \[1\] differ in shape/);
  });
});

describe('Dropout', () => {
  test('zeroes about p of the elements and scales the rest by 1/(1-p) in training; identity in eval', async () => {
    const d = new Dropout(0.25, { seed: 11 });
    const x = T.ones([4096]).requireGrad();
    const y = d.forward(x);
    const v = await values(y);
    const kept = v.filter((e) => e !== 0);
    expect(kept.every((e) => Math.abs(e - 4 / 3) < 1e-6)).toBe(true);
    // Binomial(4096, 0.25): standard deviation 28 zeros; allow 5 of them.
    expect(Math.abs(4096 - kept.length - 1024)).toBeLessThan(140);
    T.sum(y).backward();
    expect(Array.from(await values(x.grad!))).toEqual(Array.from(v));
    // Each call draws a new mask; the seed makes the sequence reproducible.
    expect(await values(d.forward(x))).not.toEqual(v);
    expect(await values(new Dropout(0.25, { seed: 11 }).forward(x))).toEqual(v);
    d.eval();
    expect(d.forward(x)).toBe(x);
    expect(() => new Dropout(1.5)).toThrow(/Dropout: p must be in \[0, 1\], got 1.5/);
  });
});

// A miniature of diffusers' UNet2DModel layout, to pin the dotted names.
class Resnet extends Layer {
  norm1 = new GroupNorm(2, 4);
  conv1 = new Conv2d(4, 4, 3, { padding: 1 });
  time_emb_proj = new Linear(8, 4);
  norm2 = new GroupNorm(2, 4);
  conv2 = new Conv2d(4, 4, 3, { padding: 1 });
  nonlinearity = new SiLU();
  forward(x: Tensor): Tensor {
    return T.tidy(() => T.add(x, this.conv2.forward(this.nonlinearity.forward(this.norm2.forward(this.conv1.forward(this.norm1.forward(x)))))));
  }
}
class DownBlock extends Module {
  resnets = new ModuleList([new Resnet(), new Resnet()]);
  downsamplers = new ModuleList([new Downsample2d(4)]);
}
class MidBlock extends Module {
  attentions = new ModuleList([new SpatialAttention(4, { normGroups: 2 })]);
  resnets = new ModuleList([new Resnet()]);
}
class TinyUNet extends Module {
  conv_in = new Conv2d(1, 4, 3, { padding: 1 });
  time_embedding = new Sequential(new Linear(4, 8), new SiLU(), new Linear(8, 8));
  down_blocks = new ModuleList([new DownBlock()]);
  mid_block = new MidBlock();
  scale: Tensor = parameter(T.ones([1]));
}

describe('Module', () => {
  test('state dict names follow PyTorch: own parameters first, then children depth-first, numeric list names', () => {
    const m = new TinyUNet();
    const resnet = (p: string) =>
      ['norm1.weight', 'norm1.bias', 'conv1.weight', 'conv1.bias', 'time_emb_proj.weight', 'time_emb_proj.bias', 'norm2.weight', 'norm2.bias', 'conv2.weight', 'conv2.bias'].map(
        (n) => `${p}.${n}`,
      );
    expect([...m.stateDict().keys()]).toEqual([
      'scale',
      'conv_in.weight',
      'conv_in.bias',
      'time_embedding.0.weight',
      'time_embedding.0.bias',
      'time_embedding.2.weight',
      'time_embedding.2.bias',
      ...resnet('down_blocks.0.resnets.0'),
      ...resnet('down_blocks.0.resnets.1'),
      'down_blocks.0.downsamplers.0.conv.weight',
      'down_blocks.0.downsamplers.0.conv.bias',
      ...['group_norm', 'to_q', 'to_k', 'to_v', 'to_out.0'].flatMap((n) => [`mid_block.attentions.0.${n}.weight`, `mid_block.attentions.0.${n}.bias`]),
      ...resnet('mid_block.resnets.0'),
    ]);
    expect(m.stateDict().get('down_blocks.0.resnets.1.conv1.weight')!.shape).toEqual([4, 4, 3, 3]);
    expect(m.numParameters()).toBe(m.parameters().reduce((s, p) => s + p.size, 0));
    m.eval();
    expect(m.namedModules().every(([, sub]) => !sub.training)).toBe(true);
    m.train();
    expect(m.mid_block.attentions.at(0).to_out.at(1).training).toBe(true);
    m.dispose();
  });

  test('modules hidden in a plain array are refused with a pointer to ModuleList', () => {
    class Bad extends Module {
      layers = [new Linear(2, 2)];
    }
    expect(() => new Bad().parameters()).toThrow(/Bad\.layers: modules or parameters inside a plain array.*ModuleList/);
  });

  test('loadStateDict: one strict error lists missing, unexpected and mis-shaped keys and loads nothing', async () => {
    const m = new Sequential(new Linear(3, 2), new SiLU(), new Linear(2, 1));
    const before = await values(m.at(0).stateDict().get('weight')!);
    const dict = {
      '0.weight': T.zeros([3, 2]),
      '0.bias': T.zeros([2]),
      '2.weight': T.zeros([1, 2]),
      'extra.weight': T.zeros([1]),
    };
    let message = '';
    try {
      m.loadStateDict(dict);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('loadStateDict into Sequential');
    expect(message).toContain('0.weight: shape [3, 2] in the dict, [2, 3] in the module');
    expect(message).toContain('missing keys: 2.bias');
    expect(message).toContain('unexpected keys: extra.weight');
    expect(await values(m.at(0).stateDict().get('weight')!)).toEqual(before);
    // Non-strict: missing and unexpected are reported, mis-shaped still throws.
    expect(() => m.loadStateDict(dict, { strict: false })).toThrow(/0\.weight: shape \[3, 2\]/);
    const ok = m.loadStateDict({ '0.weight': tensor([[1, 2, 3], [4, 5, 6]]), 'x.y': T.zeros([1]) }, { strict: false });
    expect(ok).toEqual({ missingKeys: ['0.bias', '2.weight', '2.bias'], unexpectedKeys: ['x.y'] });
    expect(Array.from(await values(m.at(0).stateDict().get('weight')!))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('loadStateDict copies bit-exactly from tensors and from safetensors arrays, keeping tensor identity', async () => {
    const a = new Linear(4, 3, { seed: 1 });
    const b = new Linear(4, 3, { seed: 2 });
    const weight = b.weight;
    b.loadStateDict(a.stateDict());
    expect(b.weight).toBe(weight);
    expect(await values(b.weight)).toEqual(await values(a.weight));
    const arrays = new Map<string, T.NamedArray>();
    for (const [k, t] of a.stateDict()) arrays.set(k, { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(await t.data(), (v) => v * 2) });
    b.loadStateDict(arrays);
    expect(Array.from(await values(b.bias!))).toEqual(Array.from(await values(a.bias!), (v) => Math.fround(v * 2)));
    arrays.set('bias', { dtype: 'I32', shape: [3], data: new Int32Array(3) });
    expect(() => b.loadStateDict(arrays)).toThrow(/bias: dtype I32, expected a float dtype \(F32, or F16\/BF16\/F64, converted to float32\)/);
  });

  test('a frozen submodule gets no gradient and stays bit-identical through optimizer steps', async () => {
    const m = new Sequential(new Linear(4, 8, { seed: 3 }), new SiLU(), new Linear(8, 2, { seed: 4 }));
    m.at(0).freeze();
    const frozenBefore = await Promise.all(m.at(0).parameters().map(values));
    const headBefore = await values(m.at(2).stateDict().get('weight')!);
    const opt = new Adam(m.parameters(), { lr: 0.1 });
    const x = tensor(Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)), [3, 4]);
    for (let i = 0; i < 3; i++) {
      opt.zeroGrad();
      T.tidy(() => T.sum(T.square(m.forward(x))).backward());
      expect(m.at(0).parameters().every((p) => p.grad === null)).toBe(true);
      opt.step();
    }
    const frozenAfter = await Promise.all(m.at(0).parameters().map(values));
    frozenAfter.forEach((v, i) => expect(v).toEqual(frozenBefore[i]));
    expect(await values(m.at(2).stateDict().get('weight')!)).not.toEqual(headBefore);
    expect(m.at(0).parameters().every((p) => opt.stateOf(p) === undefined)).toBe(true);
    expect(m.trainableParameters()).toHaveLength(2);
  });
});
