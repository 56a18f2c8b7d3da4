import { describe, expect, it } from 'vitest';
import { createRng } from '../src/data/prng.js';
import {
  pairwiseEuclidean,
  slicedW1,
  solveAssignment,
  solveTransport,
  w1Exact,
  w1FromCost,
  w1OneDim,
  type W1Method,
} from '../src/metrics/index.js';

function randomPoints(count: number, dim: number, seed: number, shift = 0): Float64Array {
  const rng = createRng(seed);
  return Float64Array.from({ length: count * dim }, () => rng.normal() + shift);
}

/** Minimum over all n! permutations (Heap's algorithm) of the mean matched cost. */
function bruteForceAssignmentMean(cost: Float64Array, n: number): number {
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const counters = new Int32Array(n);
  const costOf = () => {
    let s = 0;
    for (let i = 0; i < n; i++) s += cost[i * n + perm[i]];
    return s;
  };
  let best = costOf();
  for (let i = 1; i < n; ) {
    if (counters[i] < i) {
      const j = i % 2 === 0 ? 0 : counters[i];
      [perm[i], perm[j]] = [perm[j], perm[i]];
      best = Math.min(best, costOf());
      counters[i]++;
      i = 1;
    } else {
      counters[i] = 0;
      i++;
    }
  }
  return best / n;
}

/**
 * Brute-force LP for uniform weights 1/n, 1/m: the optimum is attained by splitting each point
 * into equal unit masses (L = lcm(n, m) per side) and matching them, checked over all L!.
 */
function bruteForceTransportMean(cost: Float64Array, n: number, m: number): number {
  const lcm = (n * m) / gcdOf(n, m);
  const rep = new Float64Array(lcm * lcm);
  for (let r = 0; r < lcm; r++) {
    for (let s = 0; s < lcm; s++) rep[r * lcm + s] = cost[Math.floor(r / (lcm / n)) * m + Math.floor(s / (lcm / m))];
  }
  return bruteForceAssignmentMean(rep, lcm);
}

function gcdOf(a: number, b: number): number {
  return b === 0 ? a : gcdOf(b, a % b);
}

/** 1-D W1 by the CDF form, integral over s of |F(s) - G(s)|: independent of the quantile form. */
function w1ByCdfIntegral(x: number[], y: number[]): number {
  const events = [...x.map((v) => ({ v, dx: 1 / x.length, dy: 0 })), ...y.map((v) => ({ v, dx: 0, dy: 1 / y.length }))];
  events.sort((p, q) => p.v - q.v);
  let fx = 0;
  let fy = 0;
  let total = 0;
  for (let k = 0; k < events.length - 1; k++) {
    fx += events[k].dx;
    fy += events[k].dy;
    total += Math.abs(fx - fy) * (events[k + 1].v - events[k].v);
  }
  return total;
}

function shuffledRows(points: Float64Array, count: number, dim: number, seed: number): Float64Array {
  const rng = createRng(seed);
  const order = Int32Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const out = new Float64Array(points.length);
  order.forEach((src, dst) => out.set(points.subarray(src * dim, (src + 1) * dim), dst * dim));
  return out;
}

function meanDifferenceNorm(a: Float64Array, b: Float64Array, n: number, m: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) {
    let ma = 0;
    let mb = 0;
    for (let i = 0; i < n; i++) ma += a[i * dim + d] / n;
    for (let j = 0; j < m; j++) mb += b[j * dim + d] / m;
    s += (ma - mb) ** 2;
  }
  return Math.sqrt(s);
}

/** Largest dual infeasibility and the primal-dual gap of a claimed optimum. */
function dualCertificate(
  cost: Float64Array,
  n: number,
  m: number,
  rowDual: Float64Array,
  colDual: Float64Array,
  rowMass: (i: number) => number,
  colMass: (j: number) => number,
  primal: number,
): { worstReduced: number; gap: number } {
  let worstReduced = Infinity;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) worstReduced = Math.min(worstReduced, cost[i * m + j] - rowDual[i] - colDual[j]);
  }
  let dual = 0;
  for (let i = 0; i < n; i++) dual += rowMass(i) * rowDual[i];
  for (let j = 0; j < m; j++) dual += colMass(j) * colDual[j];
  return { worstReduced, gap: Math.abs(primal - dual) };
}

describe('w1Exact against brute force (equal sizes)', () => {
  // Tolerance: float64 sums of <= 8 terms; relative 1e-12 is far above rounding.
  for (const dim of [2, 3]) {
    for (const n of [1, 2, 3, 5, 8]) {
      it(`matches the best of all ${n}! permutations in ${dim}-D (5 seeds)`, () => {
        for (let seed = 1; seed <= 5; seed++) {
          const a = randomPoints(n, dim, 100 * seed + n);
          const b = randomPoints(n, dim, 100 * seed + n + 50, 0.5);
          const expected = bruteForceAssignmentMean(pairwiseEuclidean(a, b, n, n, dim), n);
          expect(w1Exact(a, b, n, n, dim)).toBeCloseTo(expected, 12);
        }
      });
    }
  }

  it('also finds the optimum with many exact ties (integer grid points)', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const rng = createRng(seed);
      const a = Float64Array.from({ length: 16 }, () => rng.int(3));
      const b = Float64Array.from({ length: 16 }, () => rng.int(3));
      const expected = bruteForceAssignmentMean(pairwiseEuclidean(a, b, 8, 8, 2), 8);
      expect(w1Exact(a, b, 8, 8, 2)).toBeCloseTo(expected, 12);
    }
  });
});

describe('w1Exact against brute force (unequal sizes)', () => {
  const shapes: [number, number][] = [
    [1, 4],
    [2, 3],
    [3, 2],
    [2, 4],
    [3, 6],
    [4, 8],
  ];
  const methods: W1Method[] = ['auto', 'replicate', 'transport'];
  for (const [n, m] of shapes) {
    it(`${n} vs ${m} points equals the brute-force LP by every method`, () => {
      for (let seed = 1; seed <= 4; seed++) {
        const a = randomPoints(n, 2, seed * 7 + n);
        const b = randomPoints(m, 2, seed * 7 + m + 99, 0.3);
        const cost = pairwiseEuclidean(a, b, n, m, 2);
        const expected = bruteForceTransportMean(cost, n, m);
        for (const method of methods) expect(w1FromCost(cost, n, m, { method })).toBeCloseTo(expected, 12);
      }
    });
  }

  it('hand case: {0, 3} vs {0, 1, 2} on a line is 5/6', () => {
    // Quantiles: on t in [1/3, 1/2) |0 - 1| = 1, on [1/2, 2/3) |3 - 1| = 2, on [2/3, 1) |3 - 2| = 1:
    // 1/6 + 2/6 + 1/3 = 5/6. Embedded in 2-D along the direction (0.6, 0.8).
    const onLine = (ts: number[]) => Float64Array.from(ts.flatMap((t) => [0.6 * t, 0.8 * t]));
    for (const method of ['auto', 'transport'] as W1Method[]) {
      expect(w1Exact(onLine([0, 3]), onLine([0, 1, 2]), 2, 3, 2, { method })).toBeCloseTo(5 / 6, 12);
    }
    expect(w1OneDim([0, 3], [0, 1, 2])).toBeCloseTo(5 / 6, 15);
  });

  it('hand case: unit square corners vs their centre is sqrt(1/2)', () => {
    const corners = Float64Array.of(0, 0, 1, 0, 0, 1, 1, 1);
    expect(w1Exact(corners, Float64Array.of(0.5, 0.5), 4, 1, 2)).toBeCloseTo(Math.SQRT1_2, 14);
    expect(w1Exact(corners, Float64Array.of(0.5, 0.5), 4, 1, 2, { method: 'transport' })).toBeCloseTo(Math.SQRT1_2, 14);
  });
});

describe('w1Exact properties', () => {
  it('hand case: unit square corners vs shifted copies', () => {
    // For a translation by t, W1 <= |t| (move every point) and W1 >= |mean(a) - mean(b)| = |t|.
    const corners = Float64Array.of(0, 0, 1, 0, 0, 1, 1, 1);
    const shifted = (dx: number, dy: number) => corners.map((v, k) => v + (k % 2 === 0 ? dx : dy));
    expect(w1Exact(corners, shifted(0.5, 0), 4, 4, 2)).toBeCloseTo(0.5, 14);
    expect(w1Exact(corners, shifted(1, 0), 4, 4, 2)).toBeCloseTo(1, 14);
    expect(w1Exact(corners, shifted(0.3, 0.4), 4, 4, 2)).toBeCloseTo(0.5, 14);
  });

  it('in 1-D equals the sorted closed form, and w1OneDim equals the CDF integral for n != m', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const n = 40 + seed;
      const x = Array.from(randomPoints(n, 1, seed));
      const y = Array.from(randomPoints(n, 1, seed + 10, 0.7));
      const xs = [...x].sort((p, q) => p - q);
      const ys = [...y].sort((p, q) => p - q);
      const sortedForm = xs.reduce((s, v, k) => s + Math.abs(v - ys[k]), 0) / n;
      expect(w1Exact(Float64Array.from(x), Float64Array.from(y), n, n, 1)).toBeCloseTo(sortedForm, 12);
      expect(w1OneDim(x, y)).toBeCloseTo(sortedForm, 12);

      const m = 25 + 3 * seed;
      const z = Array.from(randomPoints(m, 1, seed + 20, -0.4));
      const cdfForm = w1ByCdfIntegral(x, z);
      expect(w1OneDim(x, z)).toBeCloseTo(cdfForm, 12);
      for (const method of ['auto', 'transport'] as W1Method[]) {
        expect(w1Exact(Float64Array.from(x), Float64Array.from(z), n, m, 1, { method })).toBeCloseTo(cdfForm, 10);
      }
    }
  });

  it('is zero for identical sets, including a shuffled copy', () => {
    const a = randomPoints(200, 5, 3);
    expect(w1Exact(a, a, 200, 200, 5)).toBe(0);
    expect(w1Exact(a, shuffledRows(a, 200, 5, 9), 200, 200, 5)).toBe(0);
  });

  it('is symmetric and invariant to shuffling either set', () => {
    for (const [n, m] of [
      [150, 150],
      [60, 90],
      [97, 61],
    ]) {
      const a = randomPoints(n, 4, n);
      const b = randomPoints(m, 4, m + 1000, 0.25);
      const w = w1Exact(a, b, n, m, 4);
      expect(w1Exact(b, a, m, n, 4)).toBeCloseTo(w, 11);
      expect(w1Exact(shuffledRows(a, n, 4, 1), b, n, m, 4)).toBeCloseTo(w, 11);
      expect(w1Exact(a, shuffledRows(b, m, 4, 2), n, m, 4)).toBeCloseTo(w, 11);
    }
  });

  it('gives the same value by assignment, replication and network simplex', () => {
    const n = 120;
    const a = randomPoints(n, 3, 5);
    const b = randomPoints(n, 3, 6, 0.2);
    const cost = pairwiseEuclidean(a, b, n, n, 3);
    const byAssignment = w1FromCost(cost, n, n, { method: 'assignment' });
    expect(w1FromCost(cost, n, n, { method: 'transport' })).toBeCloseTo(byAssignment, 11);
    expect(w1FromCost(cost, n, n, { method: 'replicate' })).toBeCloseTo(byAssignment, 11);

    // 40 vs 60: gcd 20, so replication solves a 120 x 120 assignment.
    const c2 = pairwiseEuclidean(a.subarray(0, 40 * 3), b.subarray(0, 60 * 3), 40, 60, 3);
    expect(w1FromCost(c2, 40, 60, { method: 'transport' })).toBeCloseTo(w1FromCost(c2, 40, 60, { method: 'replicate' }), 11);
  });

  it('returns optimal duals: reduced costs >= 0 and zero duality gap', () => {
    const n = 300;
    const cost = pairwiseEuclidean(randomPoints(n, 8, 1), randomPoints(n, 8, 2), n, n, 8);
    const lap = solveAssignment(cost, n);
    expect(new Set(lap.rowToCol).size).toBe(n);
    const lapCert = dualCertificate(cost, n, n, lap.rowDual, lap.colDual, () => 1, () => 1, lap.totalCost);
    expect(lapCert.worstReduced).toBeGreaterThan(-1e-9);
    expect(lapCert.gap).toBeLessThan(1e-9 * lap.totalCost);

    const [rows, cols] = [90, 140];
    const supply = new Int32Array(rows).fill(14); // 90 * 14 = 140 * 9
    const demand = new Int32Array(cols).fill(9);
    const tcost = pairwiseEuclidean(randomPoints(rows, 8, 3), randomPoints(cols, 8, 4, 0.5), rows, cols, 8);
    const plan = solveTransport(tcost, rows, cols, supply, demand);
    const shipped = new Float64Array(rows);
    const received = new Float64Array(cols);
    plan.rows.forEach((i, k) => {
      expect(plan.amounts[k]).toBeGreaterThan(0);
      shipped[i] += plan.amounts[k];
      received[plan.cols[k]] += plan.amounts[k];
    });
    expect(Array.from(shipped)).toEqual(Array.from(supply));
    expect(Array.from(received)).toEqual(Array.from(demand));
    // A basic solution uses at most rows + cols - 1 arcs.
    expect(plan.rows.length).toBeLessThanOrEqual(rows + cols - 1);
    const cert = dualCertificate(tcost, rows, cols, plan.rowDual, plan.colDual, (i) => supply[i], (j) => demand[j], plan.totalCost);
    expect(cert.worstReduced).toBeGreaterThan(-1e-9);
    expect(cert.gap).toBeLessThan(1e-9 * plan.totalCost);
  });

  it('pairwiseEuclidean matches Math.hypot (dim not a multiple of 4, float32 input)', () => {
    const a = Float32Array.from(randomPoints(5, 7, 1));
    const b = Float32Array.from(randomPoints(6, 7, 2));
    const cost = pairwiseEuclidean(a, b, 5, 6, 7);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 6; j++) {
        const diff = Array.from({ length: 7 }, (_, d) => a[i * 7 + d] - b[j * 7 + d]);
        expect(cost[i * 6 + j]).toBeCloseTo(Math.hypot(...diff), 13);
      }
    }
  });

  it('rejects inconsistent sizes and non-finite costs with a clear message', () => {
    expect(() => w1Exact(new Float64Array(6), new Float64Array(6), 3, 2, 2)).toThrow(/expected 2 points of dim 2 = 4 values, got 6/);
    expect(() => w1FromCost(Float64Array.of(0, NaN, 1, 2), 2, 2)).toThrow(/cost\[1\] = NaN is not finite/);
    expect(() => w1FromCost(new Float64Array(6), 2, 3, { method: 'assignment' })).toThrow(/needs n === m/);
    expect(() => w1OneDim([], [1])).toThrow(/non-empty/);
  });
});

describe('slicedW1', () => {
  it('is at most the exact W1 (projections are 1-Lipschitz), for mean and max', () => {
    for (const [n, m, dim] of [
      [100, 100, 2],
      [80, 120, 5],
      [64, 64, 30],
    ]) {
      const a = randomPoints(n, dim, n + dim);
      const b = randomPoints(m, dim, m + dim + 1, 0.4);
      const exact = w1Exact(a, b, n, m, dim);
      const sliced = slicedW1(a, b, n, m, dim, { projections: 200, seed: 3 });
      const slicedMax = slicedW1(a, b, n, m, dim, { projections: 200, seed: 3, reduce: 'max' });
      expect(sliced).toBeGreaterThan(0);
      expect(sliced).toBeLessThanOrEqual(slicedMax);
      // Slack 1e-12 covers float rounding of the projections only.
      expect(slicedMax).toBeLessThanOrEqual(exact + 1e-12);
    }
  });

  it('equals the exact W1 in 1-D and is deterministic for a seed', () => {
    const a = randomPoints(50, 1, 1);
    const b = randomPoints(70, 1, 2, 1);
    expect(slicedW1(a, b, 50, 70, 1, { projections: 5 })).toBeCloseTo(w1Exact(a, b, 50, 70, 1), 12);
    const a3 = randomPoints(50, 3, 3);
    const b3 = randomPoints(50, 3, 4);
    expect(slicedW1(a3, b3, 50, 50, 3, { seed: 7 })).toBe(slicedW1(a3, b3, 50, 50, 3, { seed: 7 }));
    expect(slicedW1(a3, b3, 50, 50, 3, { seed: 7 })).not.toBe(slicedW1(a3, b3, 50, 50, 3, { seed: 8 }));
  });
});

describe('w1Exact at benchmark size', () => {
  // Measured (Node 20, CPU time on a shared 2-core x86-64 box): ~1.9 s for the 2188 x 2188 x 256
  // distances, ~0.8 s for the Jonker-Volgenant solve. Real digits are harder: USPS vs MNIST
  // (both 16x16, 2188 each) took ~4 s, because many columns share a nearest row.
  // The time limits below are wall clock and generous: they only catch an accidental blow-up.
  it('solves 2188 x 2188 points in 256-D, with bounds and a dual optimality certificate', () => {
    const n = 2188;
    const dim = 256;
    const a = randomPoints(n, dim, 11);
    const b = randomPoints(n, dim, 12, 0.1);
    let started = performance.now();
    const cost = pairwiseEuclidean(a, b, n, n, dim);
    const distanceSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const lap = solveAssignment(cost, n);
    const solveSeconds = (performance.now() - started) / 1000;
    expect(distanceSeconds).toBeLessThan(30);
    expect(solveSeconds).toBeLessThan(30);
    const w = lap.totalCost / n;

    let identityCost = 0;
    for (let i = 0; i < n; i++) identityCost += cost[i * n + i] / n;
    expect(w).toBeLessThanOrEqual(identityCost);
    expect(w).toBeGreaterThanOrEqual(meanDifferenceNorm(a, b, n, n, dim) - 1e-12);
    expect(w).toBeGreaterThanOrEqual(slicedW1(a, b, n, n, dim, { projections: 16, reduce: 'max' }) - 1e-12);
    const cert = dualCertificate(cost, n, n, lap.rowDual, lap.colDual, () => 1, () => 1, lap.totalCost);
    expect(cert.worstReduced).toBeGreaterThan(-1e-9);
    expect(cert.gap).toBeLessThan(1e-9 * lap.totalCost);
  });

  // Measured: ~1.7 s CPU for the network simplex on 2188 x 2007 (gcd 1: supplies 2007, demands 2188).
  it('solves 2188 vs 2007 points (coprime sizes) by network simplex, with a dual certificate', () => {
    const [n, m, dim] = [2188, 2007, 32];
    const a = randomPoints(n, dim, 21);
    const b = randomPoints(m, dim, 22, 0.1);
    const cost = pairwiseEuclidean(a, b, n, m, dim);
    const supply = new Int32Array(n).fill(m);
    const demand = new Int32Array(m).fill(n);
    const started = performance.now();
    const plan = solveTransport(cost, n, m, supply, demand);
    const solveSeconds = (performance.now() - started) / 1000;
    expect(solveSeconds).toBeLessThan(60);
    const w = plan.totalCost / (n * m);
    expect(w).toBeGreaterThanOrEqual(slicedW1(a, b, n, m, dim, { projections: 16, reduce: 'max' }) - 1e-12);
    const cert = dualCertificate(cost, n, m, plan.rowDual, plan.colDual, (i) => supply[i], (j) => demand[j], plan.totalCost);
    expect(cert.worstReduced).toBeGreaterThan(-1e-9);
    expect(cert.gap).toBeLessThan(1e-9 * plan.totalCost);
  });
});
