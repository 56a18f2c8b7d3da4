/**
 * conv2d, upsampleNearest2d and avgPool2d: forward and gradients (GPU, float32) against naive
 * float64 loops, on odd shapes that are not multiples of the kernels' register blocks, with
 * fresh random inputs; the loop gradients themselves are checked against central finite
 * differences of the float64 forward. Tolerance for a sum of K products of values in [-1, 1]:
 * rtol 1e-4 plus atol 1e-5·√K (float32 rounding grows like √K).
 */
import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { tensor, type Conv2dOptions, type Tensor } from '@transfuse/core';
import { blockingName, convRowCandidates, convWeightGradRowCandidates, weightGradBlockingName } from '@transfuse/kernels';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';
import { convRef, type ConvPairGeom } from './nn-reference.js';

useGpu();

const tolFor = (k: number) => ({ rtol: 1e-4, atol: 1e-5 * Math.sqrt(Math.max(k, 1)) });

const asPair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;

function geometry(xs: number[], ws: number[], o: Conv2dOptions): ConvPairGeom {
  const g = {
    n: xs[0],
    cin: xs[1],
    h: xs[2],
    w: xs[3],
    cout: ws[0],
    kh: ws[2],
    kw: ws[3],
    stride: asPair(o.stride, 1),
    padding: asPair(o.padding, 0),
    dilation: asPair(o.dilation, 1),
    groups: o.groups ?? 1,
  };
  const ho = Math.floor((g.h + 2 * g.padding[0] - g.dilation[0] * (g.kh - 1) - 1) / g.stride[0]) + 1;
  const wo = Math.floor((g.w + 2 * g.padding[1] - g.dilation[1] * (g.kw - 1) - 1) / g.stride[1]) + 1;
  return { ...g, ho, wo };
}

interface ConvCase {
  x: number[];
  w: number[];
  opts?: Conv2dOptions;
  bias?: boolean;
}

function label(c: ConvCase): string {
  return `x ${JSON.stringify(c.x)} w ${JSON.stringify(c.w)} ${JSON.stringify(c.opts ?? {})}${c.bias ? ' +bias' : ''}`;
}

function randomInputs(c: ConvCase, rng: (lo?: number, hi?: number) => number) {
  const size = (s: number[]) => s.reduce((a, d) => a * d, 1);
  return {
    x: f32(randomArray(size(c.x), rng)),
    w: f32(randomArray(size(c.w), rng)),
    b: c.bias ? f32(randomArray(c.w[0], rng)) : null,
  };
}

/** conv2d forward (and, with `grads`, dx/dw/db of Σ y·gy) on the GPU against convRef. */
async function checkConv(c: ConvCase, grads: boolean): Promise<void> {
  const seed = freshSeed();
  const rng = seededRandom(seed);
  const what = `${label(c)} seed ${seed}`;
  const g = geometry(c.x, c.w, c.opts ?? {});
  const d = randomInputs(c, rng);
  const gy = grads ? f32(randomArray(g.n * g.cout * g.ho * g.wo, rng)) : undefined;
  const want = convRef(d.x, d.w, d.b, g, gy);
  const x = tensor(Float32Array.from(d.x), c.x).requireGrad(grads);
  const w = tensor(Float32Array.from(d.w), c.w).requireGrad(grads);
  const b = d.b ? tensor(Float32Array.from(d.b), [c.w[0]]).requireGrad(grads) : null;
  const y = T.conv2d(x, w, b, c.opts);
  expect(y.shape, `${what} output shape`).toEqual([g.n, g.cout, g.ho, g.wo]);
  const k = (c.w[1] * c.w[2] * c.w[3]);
  expectClose(await values(y), want.y, tolFor(k), `y of ${what}`);
  if (gy) {
    y.backward({ grad: tensor(Float32Array.from(gy), y.shape) });
    // dx sums over output channels and taps, dw over batch and output pixels.
    expectClose(await values(x.grad!), want.dx, tolFor((g.cout / g.groups) * g.kh * g.kw), `dx of ${what}`);
    expectClose(await values(w.grad!), want.dw, tolFor(g.n * g.ho * g.wo), `dw of ${what}`);
    if (b) expectClose(await values(b.grad!), want.db, tolFor(g.n * g.ho * g.wo), `db of ${what}`);
  }
  for (const t of [x, w, b, y]) t?.dispose();
}

describe('conv2d forward', () => {
  const cases: ConvCase[] = [
    { x: [1, 1, 5, 7], w: [1, 1, 1, 1] },
    { x: [3, 3, 5, 7], w: [5, 3, 3, 3], opts: { padding: 1 }, bias: true },
    { x: [1, 5, 16, 16], w: [8, 5, 3, 3], opts: { padding: 1 } },
    { x: [3, 8, 17, 9], w: [3, 8, 5, 5], opts: { padding: 2 }, bias: true },
    { x: [1, 3, 17, 9], w: [8, 3, 2, 3] },
    { x: [3, 5, 16, 16], w: [5, 5, 3, 3], opts: { stride: 2, padding: 1 }, bias: true },
    { x: [1, 8, 17, 9], w: [5, 8, 3, 3], opts: { stride: 2 } },
    { x: [3, 3, 17, 9], w: [8, 3, 3, 3], opts: { dilation: 2, padding: 2 } },
    { x: [1, 5, 16, 16], w: [3, 5, 5, 5], opts: { dilation: 2, stride: 2, padding: 1 }, bias: true },
    { x: [3, 8, 5, 7], w: [8, 4, 3, 3], opts: { groups: 2, padding: 1 }, bias: true },
    { x: [1, 8, 17, 9], w: [8, 1, 3, 3], opts: { groups: 8, padding: 1 } },
    { x: [3, 5, 5, 7], w: [5, 1, 5, 5], opts: { groups: 5, padding: 2, stride: 2 }, bias: true },
    { x: [1, 8, 16, 16], w: [5, 8, 1, 1], opts: { stride: 2 } },
    { x: [3, 3, 17, 9], w: [1, 3, 2, 3], opts: { stride: [2, 1], padding: [0, 1], dilation: [1, 2] }, bias: true },
    { x: [1, 8, 5, 7], w: [8, 8, 5, 5], opts: { padding: 2 } },
  ];
  test('matches a float64 reference on odd shapes', async () => {
    for (const c of cases) await checkConv(c, false);
  });
});

describe('conv2d backward', () => {
  const cases: ConvCase[] = [
    { x: [3, 3, 5, 7], w: [5, 3, 3, 3], opts: { padding: 1 }, bias: true },
    { x: [1, 8, 17, 9], w: [3, 8, 5, 5], opts: { padding: 2 } },
    { x: [3, 5, 16, 16], w: [5, 5, 3, 3], opts: { stride: 2, padding: 1 }, bias: true },
    { x: [1, 5, 17, 9], w: [8, 5, 2, 3], opts: { stride: 2 } },
    { x: [3, 3, 17, 9], w: [8, 3, 3, 3], opts: { dilation: 2, padding: 1 }, bias: true },
    { x: [1, 8, 5, 7], w: [8, 4, 3, 3], opts: { groups: 2, padding: 1 }, bias: true },
    { x: [3, 5, 16, 16], w: [5, 1, 3, 3], opts: { groups: 5, padding: 1, stride: 2 } },
    { x: [1, 8, 16, 16], w: [5, 8, 1, 1], bias: true },
    { x: [3, 3, 17, 9], w: [1, 3, 2, 3], opts: { stride: [2, 1], padding: [0, 1], dilation: [1, 2] }, bias: true },
    { x: [1, 5, 16, 16], w: [3, 5, 3, 3], opts: { stride: 2, dilation: 2, padding: 1 } },
    { x: [1, 3, 17, 9], w: [5, 3, 3, 3], opts: { stride: [2, 1], dilation: [2, 1], padding: [2, 1] }, bias: true },
    { x: [3, 5, 5, 7], w: [4, 5, 3, 2], opts: { dilation: [2, 1], padding: [2, 1] } },
    { x: [3, 3, 17, 9], w: [4, 3, 3, 2], opts: { stride: 3, dilation: [2, 1], padding: [2, 0] }, bias: true },
  ];
  test('dx, dw and db match float64 reference gradients', async () => {
    for (const c of cases) await checkConv(c, true);
  });

  test('the reference gradients match central finite differences (and so does the GPU)', async () => {
    const c: ConvCase = { x: [2, 3, 5, 4], w: [4, 3, 3, 2], opts: { stride: 2, padding: 1, dilation: [1, 2] }, bias: true };
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const g = geometry(c.x, c.w, c.opts!);
    const d = randomInputs(c, rng);
    const gy = f32(randomArray(g.n * g.cout * g.ho * g.wo, rng));
    const analytic = convRef(d.x, d.w, d.b, g, gy);
    const loss = () => convRef(d.x, d.w, d.b, g).y.reduce((s, v, i) => s + v * gy[i], 0);
    const fd = (a: Float64Array) =>
      Float64Array.from(a, (v, i) => {
        const step = 1e-6;
        a[i] = v + step;
        const up = loss();
        a[i] = v - step;
        const down = loss();
        a[i] = v;
        return (up - down) / (2 * step);
      });
    // float64 central differences of a bilinear loss: only rounding remains.
    const fdTol = { rtol: 1e-7, atol: 1e-7 };
    const fdx = fd(d.x);
    const fdw = fd(d.w);
    const fdb = fd(d.b!);
    expectClose(analytic.dx, fdx, fdTol, `reference dx, seed ${seed}`);
    expectClose(analytic.dw, fdw, fdTol, `reference dw, seed ${seed}`);
    expectClose(analytic.db, fdb, fdTol, `reference db, seed ${seed}`);
    const x = tensor(Float32Array.from(d.x), c.x).requireGrad();
    const w = tensor(Float32Array.from(d.w), c.w).requireGrad();
    const b = tensor(Float32Array.from(d.b!), [c.w[0]]).requireGrad();
    T.conv2d(x, w, b, c.opts).backward({ grad: tensor(Float32Array.from(gy), [g.n, g.cout, g.ho, g.wo]) });
    expectClose(await values(x.grad!), fdx, tolFor(g.cout * g.kh * g.kw), `GPU dx vs finite differences, seed ${seed}`);
    expectClose(await values(w.grad!), fdw, tolFor(g.n * g.ho * g.wo), `GPU dw vs finite differences, seed ${seed}`);
    expectClose(await values(b.grad!), fdb, tolFor(g.n * g.ho * g.wo), `GPU db vs finite differences, seed ${seed}`);
    for (const t of [x, w, b]) t.dispose();
  });

  test('only the gradients asked for are computed', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const c: ConvCase = { x: [1, 3, 5, 7], w: [5, 3, 3, 3], opts: { padding: 1 } };
    const g = geometry(c.x, c.w, c.opts!);
    const d = randomInputs(c, rng);
    const gy = f32(randomArray(g.n * g.cout * g.ho * g.wo, rng));
    const want = convRef(d.x, d.w, null, g, gy);
    const x = tensor(Float32Array.from(d.x), c.x);
    const w = tensor(Float32Array.from(d.w), c.w).requireGrad();
    T.conv2d(x, w, null, c.opts).backward({ grad: tensor(Float32Array.from(gy), [g.n, g.cout, g.ho, g.wo]) });
    expect(x.grad).toBeNull();
    expectClose(await values(w.grad!), want.dw, tolFor(g.ho * g.wo), `dw with a constant input, seed ${seed}`);
    x.dispose();
    w.dispose();
  });
});

describe('conv2d resources', () => {
  test('forward and backward leave no tensors or buffers behind', async () => {
    const x = T.randn([2, 3, 9, 7]).requireGrad();
    const w = T.randn([5, 3, 3, 3]).requireGrad();
    const b = T.randn([5]).requireGrad();
    // No tidy() here: every temporary of the ops themselves must be freed by them.
    const step = () => {
      const up = T.upsampleNearest2d(x, 2);
      const pooled = T.avgPool2d(up, 2);
      const y1 = T.conv2d(pooled, w, b, { padding: 1, stride: [2, 1] });
      const y2 = T.conv2d(x, w, b, { padding: 1 });
      const g1 = T.onesLike(y1);
      const g2 = T.onesLike(y2);
      y1.backward({ grad: g1 });
      y2.backward({ grad: g2 });
      for (const t of [up, pooled, y1, y2, g1, g2]) t.dispose();
      for (const t of [x, w, b]) {
        t.grad?.dispose();
        t.grad = null;
      }
    };
    step();
    await T.runtime().sync();
    const before = T.memory();
    step();
    await T.runtime().sync();
    const after = T.memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    for (const t of [x, w, b]) t.dispose();
  });
});

describe('conv2d at the U-Net shapes', () => {
  test('3x3 pad 1 at 16x16 and 28x28 with 32 and 64 channels, forward and backward', async () => {
    await checkConv({ x: [2, 32, 16, 16], w: [64, 32, 3, 3], opts: { padding: 1 }, bias: true }, true);
    await checkConv({ x: [1, 64, 28, 28], w: [32, 64, 3, 3], opts: { padding: 1 }, bias: true }, true);
  });

  test('stride-2 3x3 pad 1 downsampling', async () => {
    await checkConv({ x: [2, 32, 28, 28], w: [64, 32, 3, 3], opts: { stride: 2, padding: 1 }, bias: true }, true);
  });

  test('upsample x2 then conv 3x3 pad 1, gradient through both', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const xs = [2, 32, 7, 7];
    const ws = [32, 32, 3, 3];
    const d = randomInputs({ x: xs, w: ws, bias: true }, rng);
    const up = upsampleRef(d.x, xs, 2);
    const g = geometry([2, 32, 14, 14], ws, { padding: 1 });
    const gy = f32(randomArray(2 * 32 * 14 * 14, rng));
    const want = convRef(up, d.w, d.b, g, gy);
    const x = tensor(Float32Array.from(d.x), xs).requireGrad();
    const w = tensor(Float32Array.from(d.w), ws);
    const b = tensor(Float32Array.from(d.b!), [32]);
    const y = T.conv2d(T.upsampleNearest2d(x, 2), w, b, { padding: 1 });
    expectClose(await values(y), want.y, tolFor(32 * 9), `y, seed ${seed}`);
    y.backward({ grad: tensor(Float32Array.from(gy), y.shape) });
    expectClose(await values(x.grad!), poolSumRef(want.dx, [2, 32, 14, 14], 2, 2, 1), tolFor(4 * 32 * 9), `dx, seed ${seed}`);
    for (const t of [x, w, b, y]) t.dispose();
  });
});

describe('conv2d row-kernel variants (every block the tuner may pick)', () => {
  // Stride 1 along x, so the row kernels run; widths that every candidate's pixel block misfits.
  const cases: ConvCase[] = [
    { x: [3, 5, 5, 7], w: [6, 5, 3, 3], opts: { padding: 1 }, bias: true },
    { x: [2, 9, 4, 4], w: [11, 9, 3, 3], opts: { padding: 1 }, bias: true },
    { x: [2, 6, 9, 13], w: [5, 6, 3, 3], opts: { padding: 1 } },
    { x: [1, 8, 6, 6], w: [8, 4, 3, 3], opts: { padding: 1, groups: 2 } },
  ];
  test('forward, input gradient and weight gradient match float64 references for each forced variant', async () => {
    for (const c of cases) {
      const [ho, wo] = [c.x[2], c.x[3]];
      const cig = c.w[1];
      const cog = c.w[0] / (c.opts?.groups ?? 1);
      const fwd = convRowCandidates({ outW: wo, outCg: cog, redC: cig, kw: c.w[3] }).map(blockingName);
      const dx = convRowCandidates({ outW: c.x[3], outCg: cig, redC: cog, kw: c.w[3] }).map(blockingName);
      const dw = convWeightGradRowCandidates({ outW: wo, outCg: cog, inCg: cig, kw: c.w[3] }).map(weightGradBlockingName);
      expect(ho).toBeGreaterThan(0);
      for (let i = 0; i < Math.max(fwd.length, dx.length, dw.length); i++) {
        T.forceVariant('conv', fwd[i % fwd.length]);
        T.forceVariant('conv-input-grad', dx[i % dx.length]);
        T.forceVariant('conv-wgrad', dw[i % dw.length]);
        try {
          await checkConv(c, true);
        } finally {
          for (const f of ['conv', 'conv-input-grad', 'conv-wgrad']) T.forceVariant(f, null);
        }
      }
    }
  });

  test('a forced variant that is not a candidate is refused with the candidates named', () => {
    const x = T.randn([1, 3, 5, 5]);
    const w = T.randn([4, 3, 3, 3]);
    T.forceVariant('conv', 'tco64_tpx1_wg1');
    try {
      expect(() => T.conv2d(x, w, null, { padding: 1 })).toThrow(/forced conv variant 'tco64_tpx1_wg1' is not one of this shape's candidates: tco4_tpx8_wg64, tco4_tpx5_wg64/);
    } finally {
      T.forceVariant('conv', null);
      x.dispose();
      w.dispose();
    }
  });
});

/** Nearest upsampling by the definition: y[.., i, j] = x[.., ⌊i/s⌋, ⌊j/s⌋]. */
function upsampleRef(x: Float64Array, s: number[], scale: number): Float64Array {
  const [n, c, h, w] = s;
  const y = new Float64Array(n * c * h * scale * w * scale);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < h * scale; i++) {
      for (let j = 0; j < w * scale; j++) {
        y[(p * h * scale + i) * w * scale + j] = x[(p * h + Math.floor(i / scale)) * w + Math.floor(j / scale)];
      }
    }
  }
  return y;
}

/** scale · Σ of k x k windows at stride s (no padding). */
function poolSumRef(x: Float64Array, s: number[], k: number, stride: number, scale: number): Float64Array {
  const [n, c, h, w] = s;
  const ho = Math.floor((h - k) / stride) + 1;
  const wo = Math.floor((w - k) / stride) + 1;
  const y = new Float64Array(n * c * ho * wo);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        let acc = 0;
        for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) acc += x[(p * h + i * stride + a) * w + j * stride + b];
        y[(p * ho + i) * wo + j] = acc * scale;
      }
    }
  }
  return y;
}

/** Gradient of avg pooling by scattering each window's gradient over the window. */
function avgPoolGradRef(gy: Float64Array, s: number[], k: number, stride: number): Float64Array {
  const [n, c, h, w] = s;
  const ho = Math.floor((h - k) / stride) + 1;
  const wo = Math.floor((w - k) / stride) + 1;
  const dx = new Float64Array(n * c * h * w);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        const v = gy[(p * ho + i) * wo + j] / (k * k);
        for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) dx[(p * h + i * stride + a) * w + j * stride + b] += v;
      }
    }
  }
  return dx;
}

describe('upsampleNearest2d and avgPool2d', () => {
  const exact = { rtol: 0, atol: 0 };
  test('upsampleNearest2d forward and backward', async () => {
    for (const [shape, scale] of [
      [[3, 5, 5, 7], 2],
      [[1, 3, 17, 9], 3],
      [[2, 1, 1, 1], 1],
    ] as [number[], number][]) {
      const seed = freshSeed();
      const rng = seededRandom(seed);
      const [n, c, h, w] = shape;
      const d = f32(randomArray(n * c * h * w, rng));
      const gy = f32(randomArray(n * c * h * scale * w * scale, rng));
      const x = tensor(Float32Array.from(d), shape).requireGrad();
      const y = T.upsampleNearest2d(x, scale);
      expect(y.shape).toEqual([n, c, h * scale, w * scale]);
      expectClose(await values(y), upsampleRef(d, shape, scale), exact, `upsample ${shape} x${scale}, seed ${seed}`);
      y.backward({ grad: tensor(Float32Array.from(gy), y.shape) });
      const tol = tolFor(scale * scale);
      expectClose(await values(x.grad!), poolSumRef(gy, y.shape as number[], scale, scale, 1), tol, `upsample grad ${shape}, seed ${seed}`);
      x.dispose();
      y.dispose();
    }
  });

  test('avgPool2d forward and backward, overlapping and uneven windows included', async () => {
    for (const [shape, k, s] of [
      [[3, 5, 16, 16], 2, 2],
      [[1, 3, 17, 9], 2, 2],
      [[2, 4, 5, 7], 3, 2],
      [[1, 2, 9, 8], 2, 3],
      [[1, 1, 5, 7], 5, 1],
    ] as [number[], number, number][]) {
      const seed = freshSeed();
      const rng = seededRandom(seed);
      const d = f32(randomArray(shape.reduce((a, b) => a * b, 1), rng));
      const x = tensor(Float32Array.from(d), shape).requireGrad();
      const y = T.avgPool2d(x, k, s);
      const want = poolSumRef(d, shape, k, s, 1 / (k * k));
      const what = `avgPool ${shape} k${k} s${s}, seed ${seed}`;
      expect(y.shape).toEqual([shape[0], shape[1], Math.floor((shape[2] - k) / s) + 1, Math.floor((shape[3] - k) / s) + 1]);
      expectClose(await values(y), want, tolFor(k * k), what);
      const gy = f32(randomArray(y.size, rng));
      y.backward({ grad: tensor(Float32Array.from(gy), y.shape) });
      expectClose(await values(x.grad!), avgPoolGradRef(gy, shape, k, s), tolFor(k * k), `grad of ${what}`);
      x.dispose();
      y.dispose();
    }
  });
});

describe('bad input', () => {
  test('conv2d names the op and the shapes', () => {
    const x = T.zeros([2, 4, 8, 8]);
    const w = T.zeros([6, 4, 3, 3]);
    const err = (f: () => Tensor, re: RegExp) => expect(f).toThrow(re);
    err(() => T.conv2d(x, T.zeros([6, 3, 3, 3])), /conv2d: weight \[6, 3, 3, 3\] expects 3 input channels .* input \[2, 4, 8, 8\] has 4/);
    err(() => T.conv2d(x, T.zeros([6, 2, 3, 3]), null, { groups: 3 }), /conv2d: groups = 3 must divide .*\[2, 4, 8, 8\].*\[6, 2, 3, 3\]/);
    err(() => T.conv2d(x, T.zeros([5, 2, 3, 3]), null, { groups: 2 }), /conv2d: groups = 2 must divide .* output channels \(5\)/);
    err(() => T.conv2d(x, T.zeros([6, 4, 11, 3])), /conv2d: kernel 11x3 .* larger than the padded input 8x8 \(input \[2, 4, 8, 8\]/);
    err(() => T.conv2d(x, w, null, { dilation: 5 }), /conv2d: kernel 3x3 \(dilation 5x5, spanning 11x11\) is larger/);
    err(() => T.conv2d(T.zeros([4, 8, 8]), w), /conv2d: input must be 4-D \[N, Cin, H, W\], got \[4, 8, 8\]/);
    err(() => T.conv2d(x, T.zeros([6, 4, 3])), /conv2d: weight must be 4-D .* got \[6, 4, 3\]/);
    err(() => T.conv2d(x, w, T.zeros([5])), /conv2d: bias must have shape \[6\] .* got \[5\]/);
    err(() => T.conv2d(x, w, null, { stride: 0 }), /conv2d: stride must be an integer >= 1/);
    err(() => T.conv2d(x, w, null, { padding: -1 }), /conv2d: padding must be an integer >= 0/);
    err(() => T.conv2d(x, w, null, { groups: 1.5 }), /conv2d: groups must be a positive integer/);
    for (const t of [x, w]) t.dispose();
  });

  test('pooling ops name the op and the shapes', () => {
    const x = T.zeros([1, 2, 4, 5]);
    expect(() => T.avgPool2d(x, 6)).toThrow(/avgPool2d: kernel 6 is larger than the input's 4x5 \(input \[1, 2, 4, 5\]\)/);
    expect(() => T.avgPool2d(x, 2, 0)).toThrow(/avgPool2d: stride must be a positive integer, got 0/);
    expect(() => T.avgPool2d(T.zeros([2, 4, 5]))).toThrow(/avgPool2d: input must be 4-D \[N, C, H, W\], got \[2, 4, 5\]/);
    expect(() => T.upsampleNearest2d(x, 1.5)).toThrow(/upsampleNearest2d: scale must be a positive integer, got 1.5/);
    expect(() => T.upsampleNearest2d(T.zeros([4, 5]))).toThrow(/upsampleNearest2d: input must be 4-D/);
    x.dispose();
  });
});
