import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { tensor } from '@transfuse/core';
import { BINARY_CASES, BROADCAST_PAIRS, UNARY_CASES } from './cases.js';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';
import * as ref from './reference.js';

useGpu();

// Sizes around the vec4 and 256-invocation workgroup boundaries.
const SIZES = [1, 3, 7, 33, 1000, 1027, 4099];

// float32 math on llvmpipe: transcendental functions within a few ulp.
const DEFAULT_TOL = { rtol: 2e-6, atol: 1e-6 };

describe('unary ops against float64 references', () => {
  for (const [name, c] of Object.entries(UNARY_CASES)) {
    test(name, async () => {
      const seed = freshSeed();
      const rng = seededRandom(seed);
      for (const n of SIZES) {
        const x = f32(randomArray(n, rng, c.lo, c.hi));
        const y = c.f(tensor(Float32Array.from(x)));
        expectClose(await values(y), Array.from(x, c.ref), c.tol ?? DEFAULT_TOL, `${name} n=${n} seed=${seed}`);
      }
    });
  }

  test('pow of negative bases follows the integer-exponent sign rule', async () => {
    const x = tensor([-2, -1.5, 0, 1.5, 2]);
    expectClose(await values(T.pow(x, 2)), [4, 2.25, 0, 2.25, 4], DEFAULT_TOL, 'x^2');
    expectClose(await values(T.pow(x, 3)), [-8, -3.375, 0, 3.375, 8], DEFAULT_TOL, 'x^3');
    expectClose(await values(T.pow(x, 0)), [1, 1, 1, 1, 1], DEFAULT_TOL, 'x^0');
    const half = await values(T.pow(x, 0.5));
    expect(Array.from(half.slice(0, 2), Number.isNaN), 'a negative base to a non-integer power is NaN').toEqual([true, true]);
    expectClose(half.slice(2), [0, Math.sqrt(1.5), Math.SQRT2], DEFAULT_TOL, 'x^0.5 of non-negative bases');
    const neg = await values(T.pow(x, -1.5));
    expect(Array.from(neg.slice(0, 2), Number.isNaN), 'a negative base to a negative non-integer power is NaN').toEqual([true, true]);
    const y = await values(T.pow(tensor([-2, -2, -0.5]), tensor([2.5, -3, 3])));
    expect(Number.isNaN(y[0]), 'tensor exponent: (-2)^2.5 is NaN').toBe(true);
    expectClose(y.slice(1), [-0.125, -0.125], DEFAULT_TOL, 'tensor exponent: odd integer powers keep the sign');
  });

  test('sigmoid, silu and tanh saturate without NaN', async () => {
    const x = tensor([-1e4, -100, 100, 1e4]);
    expectClose(await values(T.sigmoid(x)), [0, 0, 1, 1], DEFAULT_TOL, 'sigmoid');
    expectClose(await values(T.silu(x)), [-0, -0, 100, 1e4], DEFAULT_TOL, 'silu');
    expectClose(await values(T.tanh(x)), [-1, -1, 1, 1], DEFAULT_TOL, 'tanh');
  });
});

describe('binary ops with broadcasting against float64 references', () => {
  for (const [name, c] of Object.entries(BINARY_CASES)) {
    test(name, async () => {
      const seed = freshSeed();
      const rng = seededRandom(seed);
      for (const [sa, sb] of BROADCAST_PAIRS) {
        // Small integers make comparisons hit equality often.
        const gen = (n: number, positive?: boolean) =>
          name.length === 2 ? Float64Array.from({ length: n }, () => Math.floor(rng(-2, 3))) : f32(randomArray(n, rng, positive ? 0.5 : -2, 2));
        const a = { data: gen(ref.size(sa), c.positiveA), shape: sa };
        const b = { data: gen(ref.size(sb), c.positiveB), shape: sb };
        const y = c.f(tensor(Float32Array.from(a.data), sa), tensor(Float32Array.from(b.data), sb));
        const want = ref.binary(a, b, c.ref);
        expect(y.shape).toEqual(want.shape);
        expectClose(await values(y), want.data, { rtol: 2e-6, atol: 1e-6 }, `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)} seed=${seed}`);
      }
    });
  }

  test('comparisons with a number', async () => {
    const x = tensor([-1, 0, 0.5, 2]);
    expect(Array.from(await T.eq(x, 0.5).data())).toEqual([0, 0, 1, 0]);
    expect(Array.from(await T.ne(x, 0.5).data())).toEqual([1, 1, 0, 1]);
    expect(Array.from(await T.lt(x, 0.5).data())).toEqual([1, 1, 0, 0]);
    expect(Array.from(await T.le(x, 0.5).data())).toEqual([1, 1, 1, 0]);
    expect(Array.from(await T.gt(x, 0.5).data())).toEqual([0, 0, 0, 1]);
    expect(Array.from(await T.ge(x, 0.5).data())).toEqual([0, 0, 1, 1]);
  });

  test('where broadcasts condition and both branches', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const shapes: [number[], number[], number[]][] = [
      [[3, 5], [3, 5], [3, 5]],
      [[3, 1], [1, 5], []],
      [[7], [2, 7], [2, 1]],
    ];
    for (const [sc, sa, sb] of shapes) {
      const c = { data: Float64Array.from({ length: ref.size(sc) }, () => +(rng() > 0.5)), shape: sc };
      const a = { data: f32(randomArray(ref.size(sa), rng)), shape: sa };
      const b = { data: f32(randomArray(ref.size(sb), rng)), shape: sb };
      const y = T.where(tensor(Float32Array.from(c.data), sc), tensor(Float32Array.from(a.data), sa), tensor(Float32Array.from(b.data), sb));
      const want = ref.ternary(c, a, b, (k, x, z) => (k !== 0 ? x : z));
      expect(y.shape).toEqual(want.shape);
      expectClose(await values(y), want.data, { rtol: 0, atol: 0 }, `where seed=${seed}`);
    }
    expect(Array.from(await T.where(tensor([1, 0, 1]), 5, -5).data())).toEqual([5, -5, 5]);
  });
});
