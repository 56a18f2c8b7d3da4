import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { tensor } from '@transfuse/core';
import { softmaxCandidates } from '@transfuse/kernels';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';
import * as ref from './reference.js';

useGpu();

/** Shapes and axis sets: adjacent axes (no copy), non-adjacent (permuted), all, size-1 axes, long rows. */
const CASES: { shape: number[]; axes?: number[] }[] = [
  { shape: [7] },
  { shape: [1] },
  { shape: [3, 5, 7], axes: [2] },
  { shape: [3, 5, 7], axes: [1] },
  { shape: [3, 5, 7], axes: [0] },
  { shape: [3, 5, 7], axes: [0, 2] },
  { shape: [3, 5, 7], axes: [1, 2] },
  { shape: [3, 5, 7] },
  { shape: [2, 1, 33, 1], axes: [0, 2] },
  { shape: [3, 10007], axes: [1] },
  { shape: [100003] },
  { shape: [1000, 3], axes: [0] },
];

// Float32 sums of n terms in [-2, 2]: each add rounds at the scale of the partial sum (about
// sqrt(n)), and the n roundings add like a random walk, so the error grows like ε·n; 2e-7·n is
// a margin: simulated sequential float32 sums (3,000 trials each, n from 7 to 10,007) stayed
// within 0.73 of it. The previous sqrt(n) scaling failed on [1000, 3] now and then.
const tolFor = (n: number) => ({ rtol: 1e-5, atol: 1e-6 + 2e-7 * n });

describe('reductions against float64 references', () => {
  for (const { shape, axes } of CASES) {
    const label = `${JSON.stringify(shape)} axes ${JSON.stringify(axes ?? 'all')}`;
    test(label, async () => {
      const seed = freshSeed();
      const rng = seededRandom(seed);
      const a = { data: f32(randomArray(ref.size(shape), rng, -2, 2)), shape };
      const x = tensor(Float32Array.from(a.data), shape);
      const ax = axes ?? shape.map((_, i) => i);
      const n = ref.size(ax.map((i) => shape[i]));
      const what = `${label} seed=${seed}`;
      for (const keepdims of [false, true]) {
        const sum = ref.reduce(a, ax, 0, (acc, v) => acc + v);
        const outShape = keepdims ? sum.keptShape : shape.filter((_, i) => !ax.includes(i));
        const s = T.sum(x, axes, keepdims);
        expect(s.shape).toEqual(outShape);
        expectClose(await values(s), sum.data, tolFor(n), `sum ${what}`);
        expectClose(await values(T.mean(x, axes, keepdims)), sum.data.map((v) => v / n), tolFor(n), `mean ${what}`);
      }
      const mx = ref.reduce(a, ax, -Infinity, (acc, v) => Math.max(acc, v));
      expectClose(await values(T.max(x, axes)), mx.data, { rtol: 0, atol: 0 }, `max ${what}`);
      const mn = ref.reduce(a, ax, Infinity, (acc, v) => Math.min(acc, v));
      expectClose(await values(T.min(x, axes)), mn.data, { rtol: 0, atol: 0 }, `min ${what}`);
      if (n > 1) {
        const mean = ref.reduce(a, ax, 0, (acc, v) => acc + v, (s, k) => s / k);
        // Two-pass reference variance.
        const dev = { data: new Float64Array(a.data.length), shape };
        const ks = ref.strides(mean.keptShape);
        for (let i = 0; i < a.data.length; i++) {
          const c = ref.coords(i, shape);
          let o = 0;
          c.forEach((v, d) => (o += ax.includes(d) ? 0 : v * ks[d]));
          dev.data[i] = (a.data[i] - mean.data[o]) ** 2;
        }
        const v = ref.reduce(dev, ax, 0, (acc, w) => acc + w, (s, k) => s / (k - 1));
        expectClose(await values(T.variance(x, axes, false, 1)), v.data, tolFor(n), `var ${what}`);
      }
    });
  }

  test('argmax and argmin pick the first extremum along an axis', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    for (const [shape, axis] of [[[3, 5, 7], 1], [[4, 1000], 1], [[33, 6], 0], [[9], 0]] as [number[], number][]) {
      // Integers in a small range create ties; the reference keeps the first index.
      const data = Float64Array.from({ length: ref.size(shape) }, () => Math.floor(rng(0, 4)));
      const x = tensor(Float32Array.from(data), shape);
      for (const [fn, better] of [[T.argmax, (v: number, b: number) => v > b], [T.argmin, (v: number, b: number) => v < b]] as const) {
        const want = ref.reduce({ data: Float64Array.from(data.map((_, i) => i)), shape }, [axis], -1, (acc, flat) => {
          const v = data[flat];
          return acc < 0 || better(v, data[acc]) ? flat : acc;
        });
        const got = await fn(x, axis).data();
        expect(got).toBeInstanceOf(Int32Array);
        const expected = Array.from(want.data, (flat) => ref.coords(flat, shape)[axis]);
        expect(Array.from(got), `seed=${seed} ${JSON.stringify(shape)} axis ${axis}`).toEqual(expected);
      }
    }
  });

  // Every row mapping of the fused kernels the tuner may pick (Dawn's OpenGL path has only
  // 'thread'), forced as a user would (forceVariant), on rows and row lengths that are not
  // multiples of the 64-invocation workgroup, an inner stride (axis 1 of 3-D), many rows and long
  // rows; inputs span ±50 around `offset`, so an unshifted exp would overflow. Backward against
  // the float64 closed forms.
  const SOFTMAX_CASES: [number[], number, number][] = [
    [[1, 1], -1, 0], [[3, 5], -1, 0], [[3, 7], -1, 0], [[4, 5, 6], 1, 0], [[7, 129], -1, 0], [[2, 1000], 1, 0],
    [[33, 1000], -1, 0], [[300, 33], -1, 0], [[1, 4099], 0, 0], [[2, 4097], -1, 0], [[7, 130, 3], 1, 0],
    [[5, 67], -1, 3e4], [[200, 9], -1, -3e4],
  ];
  // One unit in the last place of a float32 of magnitude v.
  const ulp = (v: number) => 2 ** (Math.floor(Math.log2(v)) - 23);
  test('softmax, logSoftmax (every row mapping) and logsumexp are stable for large inputs; backward', async () => {
    const modes = softmaxCandidates({ rows: 1, len: 1, inner: 1 }, T.runtime().acquired.compatibility);
    expect(modes.length).toBe(T.runtime().acquired.compatibility ? 1 : 2);
    try {
      for (const mode of modes) {
        T.forceVariant('softmax', mode);
        T.forceVariant('softmax-backward', mode);
        const seed = freshSeed();
        const rng = seededRandom(seed);
        for (const [shape, axis, offset] of SOFTMAX_CASES) {
          const data = f32(randomArray(ref.size(shape), rng, offset - 50, offset + 50));
          const gData = f32(randomArray(data.length, rng, -1, 1));
          const a = { data, shape };
          const ax = axis < 0 ? shape.length + axis : axis;
          const rowMax = ref.reduce(a, [ax], -Infinity, (acc, v) => Math.max(acc, v));
          const ks = ref.strides(rowMax.keptShape);
          const outIdx = (i: number) => {
            const c = ref.coords(i, shape);
            let o = 0;
            c.forEach((v, d) => (o += d === ax ? 0 : v * ks[d]));
            return o;
          };
          const perRow = (f: (i: number) => number) => {
            const acc = new Float64Array(rowMax.data.length);
            for (let i = 0; i < data.length; i++) acc[outIdx(i)] += f(i);
            return acc;
          };
          const sumExp = perRow((i) => Math.exp(data[i] - rowMax.data[outIdx(i)]));
          const logZ = rowMax.data.map((m, o) => m + Math.log(sumExp[o]));
          const p = data.map((v, i) => Math.exp(v - logZ[outIdx(i)]));
          const gp = perRow((i) => gData[i] * p[i]);
          const gs = perRow((i) => gData[i]);
          const what = `${JSON.stringify(shape)} axis ${axis} ${mode} seed=${seed}`;
          for (const log of [false, true]) {
            const x = tensor(Float32Array.from(data), shape).requireGrad();
            const y = log ? T.logSoftmax(x, axis) : T.softmax(x, axis);
            const want = log ? data.map((v, i) => v - logZ[outIdx(i)]) : p;
            // x - max is exact where both lie within a factor 2 (Sterbenz: the offset rows), else
            // rounds below ulp(100), so softmax keeps its error; log-softmax's shift = max + log Σ rounds at the scale of
            // |offset|: one ulp of the largest |x| (ulp(100) = 7.6e-6 without an offset).
            const yUlp = ulp(Math.abs(offset) + 50);
            expectClose(await values(y), want, log ? { rtol: 1e-5, atol: Math.max(1e-5, yUlp) } : { rtol: 1e-5, atol: 1e-7 }, `${log ? 'logSoftmax' : 'softmax'} ${what}`);
            y.backward({ grad: tensor(Float32Array.from(gData), shape) });
            const dx = log ? data.map((_, i) => gData[i] - p[i] * gs[outIdx(i)]) : data.map((_, i) => p[i] * (gData[i] - gp[outIdx(i)]));
            // d logSoftmax = g - exp(y) Σg: exp of a float32 y off by up to yUlp has that relative
            // error, so the absolute error scales with the largest |Σg| of a row.
            const maxSum = Math.max(...Array.from(gs, Math.abs));
            const tol = log ? { rtol: 1e-4, atol: 1e-6 + 1.1 * Math.max(yUlp, ulp(100)) * maxSum } : { rtol: 1e-4, atol: 1e-6 };
            expectClose(await values(x.grad!), dx, tol, `d ${log ? 'logSoftmax' : 'softmax'} ${what}`);
            x.dispose();
            y.dispose();
          }
          const x = tensor(Float32Array.from(data), shape);
          expectClose(await values(T.logsumexp(x, axis)), logZ, { rtol: 1e-6, atol: 1e-5 }, `logsumexp ${what}`);
          x.dispose();
        }
      }
    } finally {
      T.forceVariant('softmax', null);
      T.forceVariant('softmax-backward', null);
    }
  });
});
