/**
 * Matrix products: `matmulRaw` (no autograd, fused epilogue, variant selection), `matmul` with
 * NumPy-style batch broadcasting, and `linear` (x · wᵀ + b with an optional activation).
 */
import {
  MATMUL_ACTIVATION_CODE,
  MATMUL_GENERIC,
  MATMUL_TILED,
  MATMUL_TILED_SHARED_BYTES,
  MATMUL_VEC4_CANDIDATES,
  geometryName,
  matmulBucket,
  matmulVec4GeometryFor,
  matmulGenericKernel,
  matmulTiledKernel,
  matmulVec4Kernel,
  type Kernel,
  type MatmulActivation,
  type MatmulGeometry,
  type MatmulVariant,
} from '@transfuse/kernels';
import { isGradEnabled, noGrad, record } from '../autograd/tape.js';
import { tidy } from '../scope.js';
import { isSoftwareAdapter } from '../device.js';
import { runtime } from '../runtime/current.js';
import { broadcastShapes, fmt, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { mapBinary, mapUnary } from './elementwise.js';
import { reshape } from './layout.js';
import { expand, sum, sumTo } from './sum.js';
import { empty, expectTensors } from './util.js';
import { tunedVariant } from '../tune.js';
import { randn } from './creation.js';

export type { MatmulActivation, MatmulVariant } from '@transfuse/kernels';

export interface MatmulOptions {
  /** Use Aᵀ / Bᵀ (of the last two axes); a choice of strides, never a copy. */
  transA?: boolean;
  transB?: boolean;
  /** Scale of the product, applied before the bias. */
  alpha?: number;
  /** Per-column bias of shape [N]. */
  bias?: Tensor;
  activation?: MatmulActivation;
  /** Added after the activation; must have the output's shape. */
  residual?: Tensor;
  /** Kernel variant; 'auto' (default) picks by shape and adapter, see `matmulVariantFor`. */
  variant?: MatmulVariant | 'auto';
  /** What the user called, for error messages. */
  op?: string;
}

/** One product C = op(A) · op(B) over `batch` matrices of M x K and K x N. */
interface Gemm {
  a: Tensor;
  b: Tensor;
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  batch: number;
  /** Batch strides in elements (0 broadcasts one matrix). */
  sab: number;
  sbb: number;
  outShape: number[];
}

export { isSoftwareAdapter } from '../device.js';

/** Why the vec4 variant cannot run this product (its loads must stay 16-byte aligned), or null. */
function vec4Misfit(M: number, N: number, K: number, transA: boolean, transB: boolean): string | null {
  if (K % 4 !== 0) return `K = ${K} is not a multiple of 4`;
  if (transA && M % 4 !== 0) return `M = ${M} is not a multiple of 4 with A transposed`;
  if (!transB && N % 4 !== 0) return `N = ${N} is not a multiple of 4 with B not transposed`;
  return null;
}

/** Why this adapter cannot run the tiled variant, or null. */
function tiledMisfit(limits: GPUSupportedLimits): string | null {
  const [x, y] = MATMUL_TILED.workgroup;
  if (limits.maxComputeInvocationsPerWorkgroup < x * y || limits.maxComputeWorkgroupSizeX < x || limits.maxComputeWorkgroupSizeY < y) {
    return `it needs ${x}x${y} invocations per workgroup`;
  }
  if (limits.maxComputeWorkgroupStorageSize < MATMUL_TILED_SHARED_BYTES) return `it needs ${MATMUL_TILED_SHARED_BYTES} bytes of workgroup memory`;
  return null;
}

/**
 * The variant 'auto' picks. Software adapters: vec4 register blocking whenever its alignment rules
 * hold (workgroup memory and barriers are slow there), else generic. GPUs: tiled (shared tiles
 * cut global-memory traffic), else vec4, else generic.
 */
export function matmulVariantFor(M: number, N: number, K: number, transA: boolean, transB: boolean): MatmulVariant {
  const rt = runtime();
  const vec4 = vec4Misfit(M, N, K, transA, transB) === null;
  if (isSoftwareAdapter(rt.acquired.adapter.info)) return vec4 ? 'vec4' : 'generic';
  if (tiledMisfit(rt.limits) === null) return 'tiled';
  return vec4 ? 'vec4' : 'generic';
}

/** The vec4 block for this product: forced, measured by the tuner (see tune.ts), or the shape rule of matmul_choice.ts. */
function vec4Geometry(g: Gemm): MatmulGeometry {
  const software = isSoftwareAdapter(runtime().acquired.adapter.info);
  const trial = () => {
    const a = randn(g.transA ? [g.batch, g.K, g.M] : [g.batch, g.M, g.K], { seed: 1 });
    const b = randn(g.transB ? [g.batch, g.N, g.K] : [g.batch, g.K, g.N], { seed: 2 });
    const gt: Gemm = { ...g, a, b, sab: g.M * g.K, sbb: g.K * g.N, outShape: [g.batch, g.M, g.N] };
    return {
      run: (v: string) => gemm(gt, { variant: 'vec4' }, 'tune matmul', matmulVec4GeometryFor(g.M, g.N, g.batch, software, v)).dispose(),
      dispose: () => [a, b].forEach((t) => t.dispose()),
    };
  };
  const names = MATMUL_VEC4_CANDIDATES.map(geometryName);
  const chosen = tunedVariant('matmul', matmulBucket(g.M, g.N, g.K, g.transA, g.transB), names, trial);
  return matmulVec4GeometryFor(g.M, g.N, g.batch, software, chosen);
}

function kernelFor(variant: MatmulVariant, g: Gemm, op: string, geometry?: MatmulGeometry): { k: Kernel; geometry: MatmulGeometry } {
  switch (variant) {
    case 'generic':
      return { k: matmulGenericKernel(), geometry: MATMUL_GENERIC };
    case 'vec4': {
      const why = vec4Misfit(g.M, g.N, g.K, g.transA, g.transB);
      if (why) throw new Error(`${op}: the vec4 matmul variant cannot run ${g.M}x${g.K} · ${g.K}x${g.N}: ${why}`);
      geometry ??= vec4Geometry(g);
      return { k: matmulVec4Kernel(g.transA, g.transB, geometry), geometry };
    }
    case 'tiled': {
      const why = tiledMisfit(runtime().limits);
      if (why) throw new Error(`${op}: the tiled matmul variant cannot run on this adapter: ${why}`);
      return { k: matmulTiledKernel(), geometry: MATMUL_TILED };
    }
    default:
      throw new Error(`${op}: unknown matmul variant '${variant as string}' (use auto, generic, vec4 or tiled)`);
  }
}

/** Checks the epilogue operands, then records one dispatch. */
function gemm(g: Gemm, opts: MatmulOptions, op: string, geometry?: MatmulGeometry): Tensor {
  const { bias, residual } = opts;
  const activation = opts.activation ?? 'none';
  if (!Object.hasOwn(MATMUL_ACTIVATION_CODE, activation)) throw new Error(`${op}: unknown activation '${activation as string}' (use none, relu, silu or gelu)`);
  if (bias) {
    expectTensors(op, 'float32', bias);
    if (bias.rank !== 1 || bias.size !== g.N) throw new Error(`${op}: bias must have shape [${g.N}], got ${fmt(bias.shape)}`);
  }
  if (residual) {
    expectTensors(op, 'float32', residual);
    if (residual.shape.join() !== g.outShape.join()) {
      throw new Error(`${op}: residual must have the output's shape ${fmt(g.outShape)}, got ${fmt(residual.shape)}`);
    }
  }
  const y = empty(g.outShape, 'float32', op);
  if (y.size === 0) return y;
  const rt = runtime();
  if (g.batch > rt.limits.maxComputeWorkgroupsPerDimension) {
    throw new Error(`${op}: batch of ${g.batch} matrices exceeds this adapter's ${rt.limits.maxComputeWorkgroupsPerDimension} workgroups per dimension`);
  }
  if (rt.limits.maxStorageBuffersPerShaderStage < 5) {
    throw new Error(`${op}: matmul needs 5 storage buffers per shader stage; this adapter allows ${rt.limits.maxStorageBuffersPerShaderStage}`);
  }
  const requested = opts.variant ?? 'auto';
  const variant = requested === 'auto' ? matmulVariantFor(g.M, g.N, g.K, g.transA, g.transB) : requested;
  const chosen = kernelFor(variant, g, op, geometry);
  const k = chosen.k;
  geometry = chosen.geometry;
  const [tm, tn] = geometry.block;
  const [wx, wy] = geometry.workgroup;
  // Row-major A is [M, K], transposed [K, M]; B likewise. Strides are in elements.
  const aCols = g.transA ? g.M : g.K;
  const bCols = g.transB ? g.K : g.N;
  const a = g.a.storageFor(op);
  rt.dispatch(k, {
    op,
    params: {
      M: g.M,
      N: g.N,
      K: g.K,
      sam: g.transA ? 1 : aCols,
      sak: g.transA ? aCols : 1,
      sbk: g.transB ? 1 : bCols,
      sbn: g.transB ? bCols : 1,
      sab: g.sab,
      sbb: g.sbb,
      act: MATMUL_ACTIVATION_CODE[activation],
      hasBias: bias ? 1 : 0,
      hasRes: residual ? 1 : 0,
      alpha: opts.alpha ?? 1,
      pad0: 0,
      pad1: 0,
      pad2: 0,
    },
    // Absent epilogue operands bind A again (never read: the flags are 0).
    inputs: [a, g.b.storageFor(op), bias ? bias.storageFor(op) : a, residual ? residual.storageFor(op) : a],
    outputs: [y.storageFor(op)],
    workgroups: [Math.ceil(g.N / (tn * wx)), Math.ceil(g.M / (tm * wy)), g.batch],
  });
  return y;
}

/**
 * y = act(alpha · op(A)·op(B) + bias) + residual over the last two axes, op = transpose when the
 * flag is set; leading axes broadcast as in NumPy. No autograd.
 */
export function matmulRaw(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = opts.op ?? 'matmul';
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  expectTensors(op, 'float32', a, b);
  if (a.rank < 2 || b.rank < 2) throw new Error(`${op}: needs tensors of rank >= 2, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const [M, ak] = transA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const [bk, N] = transB ? [b.shape[b.rank - 1], b.shape[b.rank - 2]] : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (ak !== bk) {
    throw new Error(
      `${op}: inner dimensions differ: ${fmt(a.shape)}${transA ? 'ᵀ' : ''} · ${fmt(b.shape)}${transB ? 'ᵀ' : ''} (${ak} vs ${bk})`,
    );
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB, op);
  // Batch stride per operand: 0 when it is broadcast. Only whole-batch broadcasting of one
  // operand (or equal batches) maps onto a single stride.
  const batchStride = (t: Tensor, tb: readonly number[]): number => {
    if (sizeOf(tb) === 1) return 0;
    if (tb.length === batch.length && tb.every((d, i) => d === batch[i])) return t.shape[t.rank - 1] * t.shape[t.rank - 2];
    return -1;
  };
  const sab = batchStride(a, batchA);
  const sbb = batchStride(b, batchB);
  if (sab < 0 || sbb < 0) {
    // Partial broadcasting (e.g. [3,1,17,33] · [5,33,9]) has no single batch stride: copy that
    // operand out to the full batch shape, then run one product.
    return noGrad(() =>
      tidy(() => {
        const full = (t: Tensor, s: number) => (s < 0 ? expand(t, [...batch, ...t.shape.slice(-2)]) : t);
        return matmulRaw(full(a, sab), full(b, sbb), opts);
      }),
    );
  }
  return gemm({ a, b, transA, transB, M, N, K: ak, batch: sizeOf(batch), sab, sbb, outShape: [...batch, M, N] }, opts, op);
}

/** Matrix product of the last two axes; 1-D operands are treated as a row (a) or column (b). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  expectTensors('matmul', 'float32', a, b);
  if (a.rank === 1 || b.rank === 1) {
    const a2 = a.rank === 1 ? reshape(a, [1, a.size]) : a;
    const b2 = b.rank === 1 ? reshape(b, [b.size, 1]) : b;
    const y = matmul(a2, b2);
    const shape = [...y.shape];
    if (b.rank === 1) shape.pop();
    if (a.rank === 1) shape.splice(shape.length - (b.rank === 1 ? 1 : 2), 1);
    return reshape(y, shape);
  }
  const y = matmulRaw(a, b);
  const op = 'matmul (backward)';
  return record('matmul', [a, b], y, (g, [sa, sb], need) => [
    // dA = G · Bᵀ, dB = Aᵀ · G, summed over broadcast batch axes.
    need[0] ? sumTo(matmulRaw(g, sb, { transB: true, op }), a.shape) : null,
    need[1] ? sumTo(matmulRaw(sa, g, { transA: true, op }), b.shape) : null,
  ], [a, b]);
}

/** Backward of each activation given what the forward saved (pre-activation z, or y for relu). */
const ACTIVATION_GRAD = { relu: 'reluGrad', silu: 'siluGrad', gelu: 'geluGrad' } as const;

/**
 * y = act(x · wᵀ + bias) with PyTorch's layout: x [..., in], w [out, in], bias [out], y [..., out].
 * w is read transposed in place and the leading axes of x are one row dimension, so nothing is
 * copied. With autograd, relu is fused and its gradient taken from y; silu and gelu need the
 * pre-activation, so training runs them as a separate pass (inference stays fused).
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null, activation: MatmulActivation = 'none'): Tensor {
  const op = 'linear';
  expectTensors(op, 'float32', x, w);
  if (bias) expectTensors(op, 'float32', bias);
  if (w.rank !== 2) throw new Error(`${op}: weight must be [out, in], got ${fmt(w.shape)}`);
  if (x.rank < 1) throw new Error(`${op}: input must have rank >= 1, got a scalar`);
  const [outF, inF] = w.shape;
  if (x.shape[x.rank - 1] !== inF) {
    throw new Error(`${op}: input ${fmt(x.shape)} has ${x.shape[x.rank - 1]} features but weight ${fmt(w.shape)} expects ${inF}`);
  }
  const lead = x.shape.slice(0, -1);
  const rows = sizeOf(lead);
  const forward = (act: MatmulActivation): Tensor =>
    gemm(
      { a: x, b: w, transA: false, transB: true, M: rows, N: outF, K: inF, batch: 1, sab: 0, sbb: 0, outShape: [...lead, outF] },
      { bias: bias ?? undefined, activation: act },
      op,
    );
  const inputs = bias ? [x, w, bias] : [x, w];
  const training = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  const separateAct = training && (activation === 'silu' || activation === 'gelu') ? activation : null;
  const z = separateAct ? forward('none') : null;
  const y = z && separateAct ? mapUnary(separateAct, z, 0, 0, op) : forward(activation);
  // What the activation's backward reads: z for silu/gelu, y for relu.
  const actSaved = z ?? (activation === 'relu' ? y : null);
  const out = record(op, inputs, y, (g, [sx, sw, sAct], need) => {
    const bop = `${op} (backward)`;
    const gz = activation === 'none' ? g : mapBinary(ACTIVATION_GRAD[activation], sAct, g, bop);
    const geom = (a: Tensor, b: Tensor, transA: boolean, M: number, N: number, K: number, outShape: number[]): Gemm =>
      ({ a, b, transA, transB: false, M, N, K, batch: 1, sab: 0, sbb: 0, outShape });
    return [
      // dx = gz · w; dw = gzᵀ · x over all rows; db = Σ_rows gz.
      need[0] ? gemm(geom(gz, sw, false, rows, inF, outF, [...x.shape]), {}, bop) : null,
      need[1] ? gemm(geom(gz, sx, true, outF, inF, rows, [outF, inF]), {}, bop) : null,
      need[2] ? (lead.length > 0 ? sum(gz, [...lead.keys()]) : gz) : null,
    ];
  }, actSaved ? [x, w, actSaved] : [x, w]);
  z?.dispose();
  return out;
}
