/**
 * Matmul variants, fused epilogues, matmul/linear autograd, against float64 loops on the CPU.
 *
 * Tolerance of a product: fp32 accumulation error grows like √K (Higham & Mary's probabilistic
 * bound), so elements are compared with atol = 4·√K·2⁻²⁴·max Σ_k |a_ik·b_kj| plus 1e-6 for the
 * epilogue's own rounding, and rtol 1e-6.
 */
import { describe, expect, it } from 'vitest';
import {
  forceVariant,
  isSoftwareAdapter,
  linear,
  matmul,
  matmulRaw,
  matmulVariantFor,
  memory,
  noGrad,
  runtime,
  sum,
  tensor,
  tidy,
  type MatmulActivation,
  type MatmulVariant,
  type Tensor,
} from '@transfuse/core';
import { geometryName, MATMUL_VEC4_CANDIDATES } from '@transfuse/kernels';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';

useGpu();

const VARIANTS: MatmulVariant[] = ['generic', 'vec4', 'tiled'];
const ACTIVATIONS: MatmulActivation[] = ['none', 'relu', 'silu', 'gelu'];
const TRANSPOSES: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

/** erfc from Numerical Recipes (Chebyshev fit, fractional error < 1.2e-7): independent of the GPU's A&S form. */
function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
        t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc : erfc - 1;
}

const ACT: Record<MatmulActivation, (x: number) => number> = {
  none: (x) => x,
  relu: (x) => Math.max(x, 0),
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
};
const ACT_GRAD: Record<MatmulActivation, (x: number) => number> = {
  none: () => 1,
  relu: (x) => (x > 0 ? 1 : 0),
  silu: (x) => {
    const s = 1 / (1 + Math.exp(-x));
    return s * (1 + x * (1 - s));
  },
  gelu: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
};

interface RefGemm {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  batch?: number;
  /** Batch strides in elements (0: broadcast). */
  sab?: number;
  sbb?: number;
  alpha?: number;
  bias?: ArrayLike<number>;
  activation?: MatmulActivation;
  residual?: ArrayLike<number>;
}

/** float64 reference of the fused product, and the tolerance its fp32 evaluation deserves. */
function refGemm(a: ArrayLike<number>, b: ArrayLike<number>, o: RefGemm): { c: Float64Array; tol: { rtol: number; atol: number } } {
  const { M, N, K } = o;
  const batch = o.batch ?? 1;
  const act = ACT[o.activation ?? 'none'];
  const c = new Float64Array(batch * M * N);
  let maxAbs = 0;
  for (let p = 0; p < batch; p++) {
    const a0 = p * (o.sab ?? 0);
    const b0 = p * (o.sbb ?? 0);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        let abs = 0;
        for (let k = 0; k < K; k++) {
          const x = a[a0 + (o.transA ? k * M + i : i * K + k)] * b[b0 + (o.transB ? j * K + k : k * N + j)];
          s += x;
          abs += Math.abs(x);
        }
        maxAbs = Math.max(maxAbs, abs);
        const at = (p * M + i) * N + j;
        c[at] = act((o.alpha ?? 1) * s + (o.bias ? o.bias[j] : 0)) + (o.residual ? o.residual[at] : 0);
      }
    }
  }
  const atol = 4 * Math.sqrt(Math.max(K, 1)) * 2 ** -24 * maxAbs * Math.abs(o.alpha ?? 1) + 1e-6;
  return { c, tol: { rtol: 1e-6, atol } };
}

/** Smallest n' >= n that is a multiple of 4 when `need`. */
const align = (n: number, need: boolean) => (need ? Math.ceil(n / 4) * 4 : n);

/** Shapes the vec4 variant can run: K and the axes it loads as vec4 rounded up to multiples of 4. */
function shapeFor(variant: MatmulVariant, [M, N, K]: number[], transA: boolean, transB: boolean): number[] {
  if (variant !== 'vec4') return [M, N, K];
  return [align(M, transA), align(N, !transB), align(K, true)];
}

/** Random fp32-exact operands for op(A)·op(B) of the given size, uploaded. */
function operands(rng: (lo?: number, hi?: number) => number, M: number, N: number, K: number, transA: boolean, transB: boolean, batchA: number[] = [], batchB: number[] = []) {
  const nA = batchA.reduce((x, y) => x * y, 1);
  const nB = batchB.reduce((x, y) => x * y, 1);
  const a = f32(randomArray(nA * M * K, rng));
  const b = f32(randomArray(nB * K * N, rng));
  const ta = tensor(Float32Array.from(a), [...batchA, ...(transA ? [K, M] : [M, K])]);
  const tb = tensor(Float32Array.from(b), [...batchB, ...(transB ? [N, K] : [K, N])]);
  return { a, b, ta, tb };
}

describe('matmul variants against float64', () => {
  // Odd sizes: single rows/columns, sizes not multiples of any block, several workgroups per axis.
  const SHAPES = [
    [1, 1, 1],
    [1, 17, 3],
    [17, 1, 33],
    [3, 17, 33],
    [33, 3, 17],
    [70, 67, 45],
    // Several workgroups along both axes with ragged edges, also for the vec4 kernel's 32x128 tile.
    [97, 133, 21],
  ];
  for (const variant of VARIANTS) {
    for (const [transA, transB] of TRANSPOSES) {
      it(`${variant}, A${transA ? 'ᵀ' : ''}·B${transB ? 'ᵀ' : ''}, odd shapes`, async () => {
        const seed = freshSeed();
        const rng = seededRandom(seed);
        for (const base of SHAPES) {
          const [M, N, K] = shapeFor(variant, base, transA, transB);
          const { a, b, ta, tb } = operands(rng, M, N, K, transA, transB);
          const y = matmulRaw(ta, tb, { transA, transB, variant });
          expect(y.shape).toEqual([M, N]);
          const { c, tol } = refGemm(a, b, { M, N, K, transA, transB });
          expectClose(await values(y), c, tol, `${variant} ${M}x${K}·${K}x${N} trans ${transA},${transB} seed ${seed}`);
          for (const t of [ta, tb, y]) t.dispose();
        }
      });
    }
  }

  it('large K = 4096 accumulates within a √K error bound in every variant', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    for (const variant of VARIANTS) {
      for (const [transA, transB] of [[false, false], [true, true]] as const) {
        const [M, N, K] = shapeFor(variant, [5, 11, 4096], transA, transB);
        const { a, b, ta, tb } = operands(rng, M, N, K, transA, transB);
        const { c, tol } = refGemm(a, b, { M, N, K, transA, transB });
        // The bound is far below the result's scale (about √K/3 ≈ 21 here).
        expect(tol.atol).toBeLessThan(0.02);
        expectClose(await values(matmulRaw(ta, tb, { transA, transB, variant })), c, tol, `${variant} K=${K} seed ${seed}`);
      }
    }
  });

  it('broadcasts batches: one operand broadcast, equal batches, batch 1', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const cases: { batchA: number[]; batchB: number[]; out: number[] }[] = [
      { batchA: [3], batchB: [], out: [3] },
      { batchA: [], batchB: [2, 2], out: [2, 2] },
      { batchA: [2], batchB: [2], out: [2] },
      { batchA: [1], batchB: [1], out: [1] },
    ];
    for (const variant of VARIANTS) {
      for (const { batchA, batchB, out } of cases) {
        const transB = batchA.length === 0;
        const [M, N, K] = shapeFor(variant, [17, 9, 13], false, transB);
        const { a, b, ta, tb } = operands(rng, M, N, K, false, transB, batchA, batchB);
        const y = matmulRaw(ta, tb, { transB, variant });
        expect(y.shape).toEqual([...out, M, N]);
        const batch = out.reduce((x, z) => x * z, 1);
        const sab = batchA.reduce((x, z) => x * z, 1) > 1 ? M * K : 0;
        const sbb = batchB.reduce((x, z) => x * z, 1) > 1 ? K * N : 0;
        const { c, tol } = refGemm(a, b, { M, N, K, transB, batch, sab, sbb });
        expectClose(await values(y), c, tol, `${variant} batches ${batchA}·${batchB} seed ${seed}`);
      }
    }
  });

  it('fuses alpha, bias, activation and residual in every variant', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    for (const variant of VARIANTS) {
      for (const activation of ACTIVATIONS) {
        // One case with every operand, then bias only and residual only, so each flag is exercised alone.
        for (const [withBias, withRes] of [[true, true], [true, false], [false, true]]) {
          // Alternate layouts and shapes across activations.
          const odd = ACTIVATIONS.indexOf(activation) % 2 === 1;
          const transB = odd;
          const [M, N, K] = shapeFor(variant, odd ? [9, 35, 19] : [19, 35, 9], false, transB);
          const batch = 2;
          const { a, b, ta, tb } = operands(rng, M, N, K, false, transB, [batch], []);
          const bias = f32(randomArray(N, rng, -2, 2));
          const residual = f32(randomArray(batch * M * N, rng));
          const tBias = tensor(Float32Array.from(bias), [N]);
          const tRes = tensor(Float32Array.from(residual), [batch, M, N]);
          const alpha = 0.75;
          const y = matmulRaw(ta, tb, {
            transB,
            variant,
            alpha,
            activation,
            bias: withBias ? tBias : undefined,
            residual: withRes ? tRes : undefined,
          });
          const { c, tol } = refGemm(a, b, {
            M, N, K, transB, batch, sab: M * K, sbb: 0, alpha, activation,
            bias: withBias ? bias : undefined,
            residual: withRes ? residual : undefined,
          });
          expectClose(await values(y), c, tol, `${variant} ${activation} bias ${withBias} residual ${withRes} seed ${seed}`);
        }
      }
    }
  });
});

describe('vec4 matmul blocks the tuner may pick', () => {
  for (const geometry of MATMUL_VEC4_CANDIDATES) {
    it(`${geometryName(geometry)}: every transpose on odd shapes against float64`, async () => {
      const seed = freshSeed();
      const rng = seededRandom(seed);
      forceVariant('matmul', geometryName(geometry));
      try {
        for (const [transA, transB] of TRANSPOSES) {
          for (const base of [[1, 17, 3], [33, 3, 17], [97, 133, 21]]) {
            const [M, N, K] = shapeFor('vec4', base, transA, transB);
            const { a, b, ta, tb } = operands(rng, M, N, K, transA, transB);
            const y = matmulRaw(ta, tb, { transA, transB, variant: 'vec4' });
            const { c, tol } = refGemm(a, b, { M, N, K, transA, transB });
            expectClose(await values(y), c, tol, `${geometryName(geometry)} ${M}x${K}·${K}x${N} trans ${transA},${transB} seed ${seed}`);
            for (const t of [ta, tb, y]) t.dispose();
          }
        }
      } finally {
        forceVariant('matmul', null);
      }
    });
  }
});

describe('matmul variant selection', () => {
  it('auto picks vec4 where its alignment holds on a software adapter, tiled on a GPU', () => {
    const software = isSoftwareAdapter(runtime().acquired.adapter.info);
    const aligned = matmulVariantFor(64, 64, 64, false, false);
    const ragged = matmulVariantFor(17, 33, 45, false, false);
    if (software) {
      expect(aligned).toBe('vec4');
      expect(ragged).toBe('generic');
      expect(matmulVariantFor(17, 33, 48, false, true)).toBe('vec4');
      expect(matmulVariantFor(17, 36, 48, true, false)).toBe('generic');
    } else {
      expect([aligned, ragged]).toContain('tiled');
    }
  });

  it('refuses a forced variant that cannot run the shape, and unknown names', () => {
    const a = tensor(new Float32Array(15), [3, 5]);
    const b = tensor(new Float32Array(20), [5, 4]);
    expect(() => matmulRaw(a, b, { variant: 'vec4' })).toThrow(/matmul: the vec4 matmul variant cannot run 3x5 · 5x4: K = 5 is not a multiple of 4/);
    expect(() => matmulRaw(a, b, { variant: 'fast' as MatmulVariant })).toThrow(/unknown matmul variant 'fast'/);
    expect(() => matmulRaw(a, b, { activation: 'tanh' as MatmulActivation })).toThrow(/unknown activation 'tanh'/);
  });
});

describe('matmul errors', () => {
  it('names the op and the shapes', () => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(8), [4, 2]);
    expect(() => matmul(a, b)).toThrow(/matmul: inner dimensions differ: \[2, 3\] · \[4, 2\] \(3 vs 4\)/);
    expect(() => matmulRaw(a, tensor(new Float32Array(3), [3]))).toThrow(/matmul: needs tensors of rank >= 2, got \[2, 3\] and \[3\]/);
    const ints = tensor(new Int32Array(6), [3, 2]);
    expect(() => matmul(a, ints)).toThrow(/matmul: expected float32 tensors, got int32 of shape \[3, 2\]/);
    const b2 = tensor(new Float32Array(12), [3, 4]);
    expect(() => matmulRaw(a, b2, { bias: tensor(new Float32Array(3), [3]) })).toThrow(/matmul: bias must have shape \[4\], got \[3\]/);
    expect(() => matmulRaw(a, b2, { residual: tensor(new Float32Array(8), [4, 2]) })).toThrow(
      /matmul: residual must have the output's shape \[2, 4\], got \[4, 2\]/,
    );
    const w = tensor(new Float32Array(8), [2, 4]);
    expect(() => linear(a, w)).toThrow(/linear: input \[2, 3\] has 3 features but weight \[2, 4\] expects 4/);
    expect(() => linear(a, tensor(new Float32Array(3), [3]))).toThrow(/linear: weight must be \[out, in\], got \[3\]/);
    expect(() => linear(a, b2.reshape([4, 3]), tensor(new Float32Array(3), [3]))).toThrow(/linear: bias must have shape \[4\], got \[3\]/);
  });
});

/** Σ y·r for a fixed random r: its gradient with respect to y is r. */
function weightedSum(y: Tensor, r: ArrayLike<number>): Tensor {
  return sum(y.mul(tensor(Float32Array.from(r), y.shape)));
}

describe('matmul autograd', () => {
  it('dA = G·Bᵀ and dB = Aᵀ·G, summed over a broadcast batch', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const [batch, M, N, K] = [3, 7, 5, 6];
    const a = f32(randomArray(batch * M * K, rng));
    const b = f32(randomArray(K * N, rng));
    const r = f32(randomArray(batch * M * N, rng));
    const ta = tensor(Float32Array.from(a), [batch, M, K]).requireGrad();
    const tb = tensor(Float32Array.from(b), [K, N]).requireGrad();
    weightedSum(matmul(ta, tb), r).backward();
    const ga = new Float64Array(batch * M * K);
    const gb = new Float64Array(K * N);
    for (let p = 0; p < batch; p++) {
      for (let i = 0; i < M; i++) {
        for (let k = 0; k < K; k++) {
          for (let j = 0; j < N; j++) {
            const g = r[(p * M + i) * N + j];
            ga[(p * M + i) * K + k] += g * b[k * N + j];
            gb[k * N + j] += g * a[(p * M + i) * K + k];
          }
        }
      }
    }
    const tol = { rtol: 1e-5, atol: 1e-5 };
    expectClose(await values(ta.grad!), ga, tol, `dA seed ${seed}`);
    expectClose(await values(tb.grad!), gb, tol, `dB seed ${seed}`);
  });
});

describe('linear', () => {
  /** float64 y = act(x·wᵀ + b) and the gradients of Σ y·r. */
  function refLinear(x: Float64Array, w: Float64Array, bias: Float64Array | null, r: Float64Array, rows: number, outF: number, inF: number, act: MatmulActivation) {
    const y = new Float64Array(rows * outF);
    const gz = new Float64Array(rows * outF);
    for (let i = 0; i < rows; i++) {
      for (let o = 0; o < outF; o++) {
        let z = bias ? bias[o] : 0;
        for (let k = 0; k < inF; k++) z += x[i * inF + k] * w[o * inF + k];
        y[i * outF + o] = ACT[act](z);
        gz[i * outF + o] = r[i * outF + o] * ACT_GRAD[act](z);
      }
    }
    const dx = new Float64Array(rows * inF);
    const dw = new Float64Array(outF * inF);
    const db = new Float64Array(outF);
    for (let i = 0; i < rows; i++) {
      for (let o = 0; o < outF; o++) {
        const g = gz[i * outF + o];
        db[o] += g;
        for (let k = 0; k < inF; k++) {
          dx[i * inF + k] += g * w[o * inF + k];
          dw[o * inF + k] += g * x[i * inF + k];
        }
      }
    }
    return { y, dx, dw, db };
  }

  for (const activation of ACTIVATIONS) {
    it(`forward and backward with ${activation}, leading axes [2, 3], odd sizes`, async () => {
      const seed = freshSeed();
      const rng = seededRandom(seed);
      const [lead, inF, outF] = [[2, 3], 17, 33];
      const rows = 6;
      const x = f32(randomArray(rows * inF, rng));
      const w = f32(randomArray(outF * inF, rng, -0.5, 0.5));
      const bias = f32(randomArray(outF, rng));
      const r = f32(randomArray(rows * outF, rng));
      const ref = refLinear(x, w, bias, r, rows, outF, inF, activation);
      const tx = tensor(Float32Array.from(x), [...lead, inF]).requireGrad();
      const tw = tensor(Float32Array.from(w), [outF, inF]).requireGrad();
      const tb = tensor(Float32Array.from(bias), [outF]).requireGrad();
      const tol = { rtol: 1e-5, atol: 2e-5 };
      // Inference runs fully fused; training may split the activation off: both must agree.
      const fused = noGrad(() => linear(tx, tw, tb, activation));
      expect(fused.shape).toEqual([...lead, outF]);
      expectClose(await values(fused), ref.y, tol, `fused forward seed ${seed}`);
      const y = linear(tx, tw, tb, activation);
      expectClose(await values(y), ref.y, tol, `training forward seed ${seed}`);
      weightedSum(y, r).backward();
      expectClose(await values(tx.grad!), ref.dx, tol, `dx seed ${seed}`);
      expectClose(await values(tw.grad!), ref.dw, tol, `dw seed ${seed}`);
      expectClose(await values(tb.grad!), ref.db, tol, `db seed ${seed}`);
    });
  }

  it('gradients match central finite differences of the float64 forward (rank-1 input, no bias)', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    const [inF, outF] = [9, 5];
    const x = f32(randomArray(inF, rng));
    const w = f32(randomArray(outF * inF, rng));
    const r = f32(randomArray(outF, rng));
    const loss = (xv: Float64Array, wv: Float64Array) => refLinear(xv, wv, null, r, 1, outF, inF, 'gelu').y.reduce((s, v, i) => s + v * r[i], 0);
    const fd = (v: Float64Array, f: (p: Float64Array) => number) =>
      Float64Array.from(v, (_, i) => {
        const h = 1e-5;
        const up = Float64Array.from(v);
        const down = Float64Array.from(v);
        up[i] += h;
        down[i] -= h;
        return (f(up) - f(down)) / (2 * h);
      });
    const tx = tensor(Float32Array.from(x), [inF]).requireGrad();
    const tw = tensor(Float32Array.from(w), [outF, inF]).requireGrad();
    const y = linear(tx, tw, null, 'gelu');
    expect(y.shape).toEqual([outF]);
    weightedSum(y, r).backward();
    const tol = { rtol: 1e-4, atol: 1e-5 };
    expectClose(await values(tx.grad!), fd(x, (p) => loss(p, w)), tol, `dx vs finite differences seed ${seed}`);
    expectClose(await values(tw.grad!), fd(w, (p) => loss(x, p)), tol, `dw vs finite differences seed ${seed}`);
  });

  it('leaves no tensors behind after forward and backward in a loop', async () => {
    const x = tensor(new Float32Array(4 * 8).fill(0.5), [4, 8]).requireGrad();
    const w = tensor(new Float32Array(12 * 8).fill(0.25), [12, 8]).requireGrad();
    const b = tensor(new Float32Array(12).fill(0.1), [12]).requireGrad();
    const step = () => {
      tidy(() => sum(linear(x, w, b, 'silu')).backward());
      for (const t of [x, w, b]) {
        t.grad?.dispose();
        t.grad = null;
      }
    };
    step();
    await runtime().sync();
    const before = memory();
    for (let i = 0; i < 3; i++) step();
    await runtime().sync();
    expect(memory().tensors).toBe(before.tensors);
    expect(memory().liveBuffers).toBe(before.liveBuffers);
  });
});
