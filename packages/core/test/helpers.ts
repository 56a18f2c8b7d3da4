/**
 * Shared test utilities: the GPU device for a test file, seeded float64 reference data, and
 * closeness checks with stated tolerances. Every GPU test file calls `useGpu()` at the top.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { init, runtime, shutdown, type Tensor } from '@transfuse/core';

/**
 * Opens the device in beforeAll (a missing adapter fails the file with the how-to-fix message,
 * never a skip) and turns on output poisoning so unwritten elements show up as NaN.
 */
export function useGpu(opts: { poison?: boolean } = {}): void {
  beforeAll(async () => {
    await init();
    // Poisoning costs a submit per allocation: kernel tests want it, long training loops do not.
    runtime().poisonOutputs = opts.poison ?? true;
  });
  afterAll(() => shutdown());
}

/** Deterministic uniform numbers in [lo, hi) (mulberry32), so a failure reproduces. */
export function seededRandom(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0;
  return (lo = 0, hi = 1) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return lo + (hi - lo) * u;
  };
}

/** A fresh seed per call, printed in failures through the test name or message. */
let seedCounter = (Date.now() & 0xffff) * 1000;
export function freshSeed(): number {
  return seedCounter++;
}

export function randomArray(n: number, rng: (lo?: number, hi?: number) => number, lo = -1, hi = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng(lo, hi);
  return a;
}

/** Rounds float64 data to float32, the values the GPU actually receives. */
export function f32(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(a as ArrayLike<number>));
}

/**
 * Asserts |actual - expected| <= atol + rtol·|expected| elementwise (NaN only where expected is
 * NaN), reporting the worst element.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: { rtol: number; atol: number }, what = ''): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) {
      if (!Number.isNaN(a)) throw new Error(`${what}: element ${i} is ${a}, expected NaN`);
      continue;
    }
    if (e === Infinity || e === -Infinity) {
      if (a !== e) throw new Error(`${what}: element ${i} is ${a}, expected ${e}`);
      continue;
    }
    const err = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e));
    if (Number.isNaN(a) || err > worstErr) {
      worst = i;
      worstErr = Number.isNaN(a) ? Infinity : err;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(tolerance atol ${tol.atol} + rtol ${tol.rtol}·|expected|)`,
    );
  }
}

export async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}
