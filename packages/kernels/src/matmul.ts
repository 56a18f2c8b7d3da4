/**
 * Batched matmul C[b] = epilogue(A[b] · B[b]) in three variants that share one uniform struct, one
 * binding layout and one fused epilogue:
 *
 *   y = act(alpha · A·B + bias[col]) + residual[b, row, col]      act: none | relu | silu | gelu
 *
 * - generic: A and B read through (row, k) / (k, col) element strides, so any shape, transposed
 *   operands and broadcast batches (stride 0) work; a 4x4 block of C per invocation.
 * - vec4: A, B read as vec4 along their contiguous axis and a TM x TN block of C per invocation,
 *   K consumed 4 at a time as 4x4 matrix products; no workgroup memory or barriers, which is what
 *   is fastest on software adapters (llvmpipe). Needs K % 4 == 0, and M % 4 == 0 when A is
 *   transposed, N % 4 == 0 when B is not (vec4 loads must stay aligned).
 * - tiled: classic workgroup-memory tiling (64x64 tile, K step 16, 4x4 per invocation) for real
 *   GPUs, where shared tiles cut global traffic; any shape, strides as in generic.
 *
 * The epilogue's options are uniforms, not template choices, so each variant compiles once per
 * transpose combination: bias and residual are always bound (the caller binds A again when one
 * is absent; its flag keeps it unread).
 */
import { PRELUDE, UNARY } from './elementwise.js';
import { kernel, type Kernel } from './registry.js';
import { storeBlock } from './store.js';

export type MatmulVariant = 'generic' | 'vec4' | 'tiled';
export type MatmulActivation = 'none' | 'relu' | 'silu' | 'gelu';
/** Uniform code of each activation. */
export const MATMUL_ACTIVATION_CODE: Record<MatmulActivation, number> = { none: 0, relu: 1, silu: 2, gelu: 3 };

export interface MatmulGeometry {
  /** Rows and columns of C computed by one invocation. */
  readonly block: readonly [rows: number, cols: number];
  /** Invocations per workgroup along columns (x) and rows (y). */
  readonly workgroup: readonly [x: number, y: number];
}

export const MATMUL_GENERIC: MatmulGeometry = { block: [4, 4], workgroup: [8, 8] };
// The fixed vec4 block: GPUs, and software adapters on products too small for the larger blocks of
// matmul_choice.ts. OpenGL's Mesa 22 needs 8 invocations along x (BENCHMARKS.md, "Notes").
export const MATMUL_VEC4: MatmulGeometry = { block: [8, 16], workgroup: [8, 4] };
export const MATMUL_TILED: MatmulGeometry = { block: [4, 4], workgroup: [16, 16] };
/** K step of the tiled variant. */
const TILED_K = 16;
/** Workgroup memory the tiled variant needs (two f32 tiles). */
export const MATMUL_TILED_SHARED_BYTES = 2 * TILED_K * 64 * 4;

/**
 * Every variant takes the same parameters. Strides are in elements: sam/sak step A's rows and K,
 * sbk/sbn step B's K and columns, sab/sbb step the batch (0 when broadcast). The output and the
 * residual are contiguous [batch, M, N].
 */
const HEADER = `
alias T = vec4<f32>;
struct U {
  M: u32, N: u32, K: u32, sam: u32, sak: u32, sbk: u32, sbn: u32, sab: u32, sbb: u32,
  act: u32, hasBias: u32, hasRes: u32, alpha: f32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a_in: array<ELEM>;
@group(0) @binding(2) var<storage, read> b_in: array<ELEM>;
@group(0) @binding(3) var<storage, read> bias_in: array<f32>;
@group(0) @binding(4) var<storage, read> res_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> c_out: array<f32>;
${PRELUDE}
fn activate(x: T) -> T {
  switch u.act {
    case 1u: { return ${UNARY.relu}; }
    case 2u: { return ${UNARY.silu}; }
    case 3u: { return ${UNARY.gelu}; }
    default: { return x; }
  }
}
// Finishes up to 4 consecutive columns of one row; lanes past N are computed on clamped reads
// and never stored.
fn store4(acc: T, batch: u32, row: u32, col: u32) {
  if (row >= u.M || col >= u.N) { return; }
  let last = u.N - 1u - col;
  let lane = min(vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last));
  var v = acc * u.alpha;
  if (u.hasBias != 0u) {
    let c = col + lane;
    v += T(bias_in[c.x], bias_in[c.y], bias_in[c.z], bias_in[c.w]);
  }
  v = activate(v);
  let at = (batch * u.M + row) * u.N + col;
  if (u.hasRes != 0u) {
    let r = at + lane;
    v += T(res_in[r.x], res_in[r.y], res_in[r.z], res_in[r.w]);
  }
  for (var j = 0u; j < min(4u, last + 1u); j++) { c_out[at + j] = v[j]; }
}
`;

/** Stores a row-major block of vec4 accumulators, `perRow` of them per row, through `store4`. */
function storeMatmulBlock(accs: string[], perRow: number, row: string, col: string): string {
  return storeBlock('T', accs, (acc, i) => `store4(${acc}, batch, ${row} + ${i} / ${perRow}u, ${col} + 4u * (${i} % ${perRow}u))`);
}

const header = (elem: 'f32' | 'vec4<f32>') => HEADER.replaceAll('ELEM', elem);

const MATMUL_BINDINGS = { inputs: ['a_in', 'b_in', 'bias_in', 'res_in'], outputs: ['c_out'], uniform: 'u' };

/** Any shape and strides; 4x4 block per invocation, scalar loads. */
export function matmulGenericKernel(): Kernel {
  const [wx, wy] = MATMUL_GENERIC.workgroup;
  return kernel('matmul_generic', () => ({
    ...MATMUL_BINDINGS,
    wgsl: `${header('f32')}
@compute @workgroup_size(${wx}, ${wy}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let batch = gid.z;
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= u.M || col0 >= u.N) { return; }
  // Rows and columns past the edge read a valid neighbour; their sums are never stored.
  let ar = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(u.M - 1u)) * u.sam + batch * u.sab;
  let bc = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(u.N - 1u)) * u.sbn + batch * u.sbb;
  var c0 = T(0.0);
  var c1 = T(0.0);
  var c2 = T(0.0);
  var c3 = T(0.0);
  for (var k = 0u; k < u.K; k++) {
    let ka = k * u.sak;
    let kb = k * u.sbk;
    let b = T(b_in[bc.x + kb], b_in[bc.y + kb], b_in[bc.z + kb], b_in[bc.w + kb]);
    c0 += a_in[ar.x + ka] * b;
    c1 += a_in[ar.y + ka] * b;
    c2 += a_in[ar.z + ka] * b;
    c3 += a_in[ar.w + ka] * b;
  }
  ${storeMatmulBlock(['c0', 'c1', 'c2', 'c3'], 1, 'row0', 'col0')}
}`,
  }));
}

/**
 * Register-blocked vec4 kernel; the transposes pick the load pattern, so each combination is its
 * own pipeline. The loop body is generated fully unrolled over the block.
 */
export function matmulVec4Kernel(transA: boolean, transB: boolean, geometry: MatmulGeometry = MATMUL_VEC4): Kernel {
  const [tm, tn] = geometry.block;
  const [wx, wy] = geometry.workgroup;
  if (tm % 4 !== 0 || tn % 4 !== 0) throw new Error(`internal: vec4 matmul block ${tm}x${tn} must be multiples of 4`);
  const groupsM = tm / 4;
  const groupsN = tn / 4;
  const rows = [...Array(tm).keys()];
  const cols = [...Array(tn).keys()];
  const gm = [...Array(groupsM).keys()];
  const gn = [...Array(groupsN).keys()];
  const name = `matmul_vec4_${transA ? 't' : 'n'}${transB ? 't' : 'n'}_${tm}x${tn}_${wx}x${wy}`;
  const lines: string[] = [];
  const emit = (s: string) => lines.push(`  ${s}`);
  // Offsets (in vec4s) of each operand's first vec4 for this invocation, at kc = 0.
  if (transA) {
    // A is [K, M]: a vec4 holds 4 rows at one k; row groups step by 1, k steps by M/4.
    emit('let m4 = u.M / 4u;');
    for (const g of gm) emit(`let ag${g} = aBase + min(row0 / 4u + ${g}u, m4 - 1u);`);
  } else {
    // A is [M, K]: a vec4 holds 4 k's of one row.
    for (const r of rows) emit(`let ar${r} = aBase + min(row0 + ${r}u, u.M - 1u) * k4;`);
  }
  if (transB) {
    // B is [N, K]: a vec4 holds 4 k's of one column.
    for (const c of cols) emit(`let bc${c} = bBase + min(col0 + ${c}u, u.N - 1u) * k4;`);
  } else {
    // B is [K, N]: a vec4 holds 4 columns at one k.
    emit('let n4 = u.N / 4u;');
    for (const h of gn) emit(`let bg${h} = bBase + min(col0 / 4u + ${h}u, n4 - 1u);`);
  }
  for (const r of rows) for (const h of gn) emit(`var acc${r}_${h} = T(0.0);`);
  emit('for (var kc = 0u; kc < k4; kc++) {');
  if (transA) {
    emit('  let ka = kc * 4u * m4;');
    for (const g of gm) {
      // Columns of this matrix are k's; its transpose has the 4 rows' k-vectors as columns.
      const ld = [0, 1, 2, 3].map((j) => `a_in[ag${g} + ka + ${j}u * m4]`).join(', ');
      emit(`  let at${g} = transpose(mat4x4<f32>(${ld}));`);
    }
    for (const r of rows) emit(`  let a${r} = at${Math.floor(r / 4)}[${r % 4}];`);
  } else {
    for (const r of rows) emit(`  let a${r} = a_in[ar${r} + kc];`);
  }
  if (transB) {
    // Columns of bt_h are the k-vectors of 4 output columns: a · bt_h gives their 4 dot products.
    for (const h of gn) {
      const ld = [0, 1, 2, 3].map((j) => `b_in[bc${4 * h + j} + kc]`).join(', ');
      emit(`  let bt${h} = mat4x4<f32>(${ld});`);
    }
    for (const r of rows) for (const h of gn) emit(`  acc${r}_${h} += a${r} * bt${h};`);
  } else {
    // Columns of bm_h are 4 rows of B (one per k): bm_h · a sums a[k] · B[k, 4 columns].
    emit('  let kb = kc * 4u * n4;');
    for (const h of gn) {
      const ld = [0, 1, 2, 3].map((j) => `b_in[bg${h} + kb + ${j}u * n4]`).join(', ');
      emit(`  let bm${h} = mat4x4<f32>(${ld});`);
    }
    for (const r of rows) for (const h of gn) emit(`  acc${r}_${h} += bm${h} * a${r};`);
  }
  emit('}');
  emit(storeMatmulBlock(rows.flatMap((r) => gn.map((h) => `acc${r}_${h}`)), groupsN, 'row0', 'col0'));
  return kernel(name, () => ({
    ...MATMUL_BINDINGS,
    wgsl: `${header('vec4<f32>')}
@compute @workgroup_size(${wx}, ${wy}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let batch = gid.z;
  let row0 = gid.y * ${tm}u;
  let col0 = gid.x * ${tn}u;
  if (row0 >= u.M || col0 >= u.N) { return; }
  let k4 = u.K / 4u;
  let aBase = batch * (u.sab / 4u);
  let bBase = batch * (u.sbb / 4u);
${lines.join('\n')}
}`,
  }));
}

/**
 * Workgroup-memory tiling: each workgroup stages a 64x16 slice of A and a 16x64 slice of B, then
 * every invocation accumulates a 4x4 block from them. Global loads let the contiguous axis vary
 * fastest across neighbouring invocations (a uniform choice from the strides).
 */
export function matmulTiledKernel(): Kernel {
  const [wx, wy] = MATMUL_TILED.workgroup;
  const tile = 64;
  const perThread = (tile * TILED_K) / (wx * wy);
  return kernel('matmul_tiled', () => ({
    ...MATMUL_BINDINGS,
    wgsl: `${header('f32')}
var<workgroup> tileA: array<f32, ${TILED_K * tile}>;
var<workgroup> tileB: array<f32, ${TILED_K * tile}>;
@compute @workgroup_size(${wx}, ${wy}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let batch = wid.z;
  let row0 = wid.y * ${tile}u;
  let col0 = wid.x * ${tile}u;
  let t = lid.y * ${wx}u + lid.x;
  let aRowMajor = u.sak == 1u;
  let bRowMajor = u.sbn == 1u;
  var c0 = T(0.0);
  var c1 = T(0.0);
  var c2 = T(0.0);
  var c3 = T(0.0);
  for (var k0 = 0u; k0 < u.K; k0 += ${TILED_K}u) {
    for (var i = 0u; i < ${perThread}u; i++) {
      let e = t + i * ${wx * wy}u;
      // Tiles are stored k-major: tileA[k * 64 + row], tileB[k * 64 + col]; zeros past the edges.
      let ra = select(e % ${tile}u, e / ${TILED_K}u, aRowMajor);
      let ka = select(e / ${tile}u, e % ${TILED_K}u, aRowMajor);
      let gr = row0 + ra;
      let gka = k0 + ka;
      let va = a_in[batch * u.sab + min(gr, u.M - 1u) * u.sam + min(gka, u.K - 1u) * u.sak];
      tileA[ka * ${tile}u + ra] = select(0.0, va, gr < u.M && gka < u.K);
      let cb = select(e / ${TILED_K}u, e % ${tile}u, bRowMajor);
      let kb = select(e % ${TILED_K}u, e / ${tile}u, bRowMajor);
      let gc = col0 + cb;
      let gkb = k0 + kb;
      let vb = b_in[batch * u.sbb + min(gkb, u.K - 1u) * u.sbk + min(gc, u.N - 1u) * u.sbn];
      tileB[kb * ${tile}u + cb] = select(0.0, vb, gc < u.N && gkb < u.K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILED_K}u; kk++) {
      let ai = kk * ${tile}u + lid.y * 4u;
      let bi = kk * ${tile}u + lid.x * 4u;
      let a = T(tileA[ai], tileA[ai + 1u], tileA[ai + 2u], tileA[ai + 3u]);
      let b = T(tileB[bi], tileB[bi + 1u], tileB[bi + 2u], tileB[bi + 3u]);
      c0 += a.x * b;
      c1 += a.y * b;
      c2 += a.z * b;
      c3 += a.w * b;
    }
    workgroupBarrier();
  }
  ${storeMatmulBlock(['c0', 'c1', 'c2', 'c3'], 1, 'row0 + lid.y * 4u', 'col0 + lid.x * 4u')}
}`,
  }));
}
