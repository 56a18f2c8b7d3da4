/**
 * The synthetic experiment's data: the discretised SDE prior p_β, the projection y = Mx + noise,
 * and the exact posterior (its log density and reference means by MCMC).
 */
import { deriveSeed } from '@transfuse/core';
import { createRng, type Rng } from '../../data/prng.js';
import { cholesky, solveChol } from '../../linalg/cholesky.js';
import { malaMean, type LogDensity, type MalaOptions } from './mcmc.js';

export const SDE_STEPS = 50;
export const SDE_DT = 0.02;
export const OBS_DIM = 100;
/** Observation noise variance (std 0.5) of both experiments. */
export const OBS_VAR = 0.25;

const drift = (u: number): number => (u * (1 - u * u)) / (1 + u * u);
const driftPrime = (u: number): number => (1 - 4 * u * u - u ** 4) / (1 + u * u) ** 2;

/** One EM path from u_0 = 0 driven by the standard normals xi[0..49]: u_{j+1} = u_j + βΔ f(u_j) + √Δ ξ_j. */
export function eulerMaruyamaPath(beta: number, xi: ArrayLike<number>): Float64Array {
  if (xi.length !== SDE_STEPS) throw new Error(`eulerMaruyamaPath: need ${SDE_STEPS} normals, got ${xi.length}`);
  const out = new Float64Array(SDE_STEPS);
  let u = 0;
  for (let j = 0; j < SDE_STEPS; j++) out[j] = u = u + beta * drift(u) * SDE_DT + Math.sqrt(SDE_DT) * xi[j];
  return out;
}

/** n draws of x ~ p_β, [n, 50]. */
export function sdePrior(beta: number, n: number, rng: Rng): Float64Array {
  const out = new Float64Array(n * SDE_STEPS);
  const xi = new Float64Array(SDE_STEPS);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < SDE_STEPS; j++) xi[j] = rng.normal();
    out.set(eulerMaruyamaPath(beta, xi), i * SDE_STEPS);
  }
  return out;
}

/** M [rows, cols] with N(0, 1/cols) entries. */
export function projectionMatrix(seed: number, rows = OBS_DIM, cols = SDE_STEPS): Float64Array {
  const rng = createRng(seed);
  return Float64Array.from({ length: rows * cols }, () => rng.normal() / Math.sqrt(cols));
}

/** y = Mx + N(0, I/4) for each of the n rows of x. */
export function observe(x: Float64Array, n: number, M: Float64Array, rng: Rng, rows = OBS_DIM): Float64Array {
  const d = x.length / n;
  const y = new Float64Array(n * rows);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += M[r * d + j] * x[i * d + j];
      y[i * rows + r] = s + Math.sqrt(OBS_VAR) * rng.normal();
    }
  }
  return y;
}

/** The preconditioner: the β = 0 posterior precision D'D/Δ + M'M/σ² (D: first differences, u_0 = 0). */
export function sdePrecision(M: Float64Array, rows = OBS_DIM): Float64Array {
  const d = SDE_STEPS;
  const P = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    P[i * d + i] += (i + 1 < d ? 2 : 1) / SDE_DT;
    if (i + 1 < d) P[i * d + i + 1] = P[(i + 1) * d + i] = -1 / SDE_DT;
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += M[r * d + i] * M[r * d + j];
      P[i * d + j] += s / OBS_VAR;
    }
  }
  return P;
}

/** log p_β(x) + log N(y; Mx, I/4) and its gradient in x. */
export function sdeLogPosterior(beta: number, M: Float64Array, y: ArrayLike<number>, rows = OBS_DIM): LogDensity {
  const d = SDE_STEPS;
  return (x, g) => {
    g.fill(0);
    let lp = 0;
    let prev = 0;
    for (let j = 0; j < d; j++) {
      // r_j = u_j - u_{j-1} - βΔ f(u_{j-1}): the j-th increment's residual.
      const r = x[j] - prev - beta * SDE_DT * drift(prev);
      lp -= (r * r) / (2 * SDE_DT);
      g[j] -= r / SDE_DT;
      if (j > 0) g[j - 1] += (r * (1 + beta * SDE_DT * driftPrime(prev))) / SDE_DT;
      prev = x[j];
    }
    for (let k = 0; k < rows; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += M[k * d + j] * x[j];
      const e = (y[k] - s) / OBS_VAR;
      lp -= (0.5 * e * (y[k] - s));
      for (let j = 0; j < d; j++) g[j] += M[k * d + j] * e;
    }
    return lp;
  };
}

/** Reference E[x|y] for each row of y by preconditioned MALA, started at the β = 0 posterior mean. */
export function sdePosteriorMeans(beta: number, M: Float64Array, y: Float64Array, n: number, o: Omit<MalaOptions, 'step'>): { means: Float64Array; mcError: number; acceptance: number } {
  const d = SDE_STEPS;
  const L = cholesky(sdePrecision(M), d);
  const means = new Float64Array(n * d);
  let mcError = 0;
  let acceptance = 0;
  for (let i = 0; i < n; i++) {
    const yi = y.subarray(i * OBS_DIM, (i + 1) * OBS_DIM);
    const b = new Float64Array(d);
    for (let j = 0; j < d; j++) for (let k = 0; k < OBS_DIM; k++) b[j] += (M[k * d + j] * yi[k]) / OBS_VAR;
    const r = malaMean(sdeLogPosterior(beta, M, yi), solveChol(L, b), L, { ...o, seed: deriveSeed(o.seed, i) });
    means.set(r.mean, i * d);
    mcError += r.mcError / n;
    acceptance += r.acceptance / n;
  }
  return { means, mcError, acceptance };
}
