/** Preconditioned MALA: the reference posterior means of the synthetic experiment. */
import { createRng } from '../../data/prng.js';

/** A target for MCMC: fills g with ∇log π(x) and returns log π(x) (up to a constant). */
export type LogDensity = (x: Float64Array, g: Float64Array) => number;

export interface MalaOptions {
  burnIn: number;
  samples: number;
  seed: number;
  /** Initial step (default 0.5, adapted during burn-in towards 57% acceptance). */
  step?: number;
}

export interface McmcMean {
  mean: Float64Array;
  /** Σ_j of the squared batch-means standard errors of the mean (its expected squared error). */
  mcError: number;
  acceptance: number;
}

/**
 * Preconditioned MALA: proposals x' = x + (h/2) C∇log π(x) + √h C^{1/2} z with C = Λ^{-1}, Λ = L L'
 * given by its Cholesky factor; Metropolis–Hastings keeps π exact. Returns the chain average.
 */
export function malaMean(logp: LogDensity, x0: Float64Array, L: Float64Array, o: MalaOptions): McmcMean {
  const d = x0.length;
  const rng = createRng(o.seed);
  // C v = L'^{-1} L^{-1} v (two triangular solves); C^{1/2} z = L'^{-1} z.
  const solveL = (v: Float64Array) => {
    const out = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      let s = v[i];
      for (let k = 0; k < i; k++) s -= L[i * d + k] * out[k];
      out[i] = s / L[i * d + i];
    }
    return out;
  };
  const solveLt = (v: Float64Array) => {
    const out = new Float64Array(d);
    for (let i = d - 1; i >= 0; i--) {
      let s = v[i];
      for (let k = i + 1; k < d; k++) s -= L[k * d + i] * out[k];
      out[i] = s / L[i * d + i];
    }
    return out;
  };
  // ‖L'v‖² = v'Λv, the proposal's Mahalanobis norm.
  const normLam = (v: Float64Array) => {
    let s = 0;
    for (let i = 0; i < d; i++) {
      let r = 0;
      for (let k = i; k < d; k++) r += L[k * d + i] * v[k];
      s += r * r;
    }
    return s;
  };
  let h = o.step ?? 0.5;
  let x = Float64Array.from(x0);
  let g = new Float64Array(d);
  let lp = logp(x, g);
  let cg = solveLt(solveL(g));
  const sum = new Float64Array(d);
  const batches = 20;
  const perBatch = Math.max(1, Math.floor(o.samples / batches));
  const batchSums = new Float64Array(batches * d);
  let accepted = 0;
  const total = o.burnIn + perBatch * batches;
  for (let it = 0; it < total; it++) {
    const z = Float64Array.from({ length: d }, () => rng.normal());
    const noise = solveLt(z);
    const y = Float64Array.from(x, (xi, i) => xi + 0.5 * h * cg[i] + Math.sqrt(h) * noise[i]);
    const gy = new Float64Array(d);
    const lpy = logp(y, gy);
    const cgy = solveLt(solveL(gy));
    const fwd = Float64Array.from(y, (yi, i) => yi - x[i] - 0.5 * h * cg[i]);
    const bwd = Float64Array.from(x, (xi, i) => xi - y[i] - 0.5 * h * cgy[i]);
    const logA = lpy - lp - (normLam(bwd) - normLam(fwd)) / (2 * h);
    const acc = Number.isFinite(logA) && Math.log(1 - rng.next()) < logA;
    if (acc) {
      x = y;
      g = gy;
      lp = lpy;
      cg = cgy;
    }
    if (it < o.burnIn) {
      h *= Math.exp(((acc ? 1 : 0) - 0.574) / Math.sqrt(it + 1));
    } else {
      accepted += acc ? 1 : 0;
      const b = Math.floor((it - o.burnIn) / perBatch);
      for (let i = 0; i < d; i++) {
        sum[i] += x[i];
        batchSums[b * d + i] += x[i];
      }
    }
  }
  const N = perBatch * batches;
  const mean = sum.map((s) => s / N);
  let mcError = 0;
  for (let i = 0; i < d; i++) {
    let v = 0;
    for (let b = 0; b < batches; b++) v += (batchSums[b * d + i] / perBatch - mean[i]) ** 2;
    mcError += v / (batches - 1) / batches;
  }
  return { mean, mcError, acceptance: accepted / N };
}
