/**
 * Elementwise kernels: unary and binary maps (with NumPy broadcasting), the ternary `where`,
 * fills and strided copies (the layout ops: permute, slice, expand, concat).
 *
 * One expression table drives both variants of a map: a vec4 kernel over contiguous data of the
 * same shape (the fast path: one vec4 per invocation) and a scalar kernel that walks broadcast
 * strides. Shapes and strides travel in the uniform, so one pipeline serves every shape.
 */
import { kernel, type Kernel } from './registry.js';

/** Largest rank the strided kernels handle (after adjacent dimensions are merged). */
export const MAX_RANK = 8;
/** Invocations per workgroup for the elementwise kernels. */
export const EW_WORKGROUP = 256;

/**
 * Unary maps of `x` (type T: f32 or vec4<f32>) with two scalar parameters `p0`, `p1`.
 * Expressions must stay finite where the math is: sigmoid and silu are written so that
 * exp overflow gives the right limit, tanh clamps its argument.
 */
export const UNARY = {
  neg: '-x',
  exp: 'exp(x)',
  log: 'log(x)',
  sqrt: 'sqrt(x)',
  rsqrt: 'inverseSqrt(x)',
  abs: 'abs(x)',
  tanh: 'tanh(clamp(x, T(-15.0), T(15.0)))',
  sigmoid: 'T(1.0) / (T(1.0) + exp(-x))',
  relu: 'max(x, T(0.0))',
  silu: 'x / (T(1.0) + exp(-x))',
  gelu: 'T(0.5) * x * (T(1.0) + erf_(x * T(0.7071067811865476)))',
  /** GELU's tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))) */
  geluTanh: 'T(0.5) * x * (T(1.0) + geluTanhInner_(x))',
  sin: 'sin(x)',
  cos: 'cos(x)',
  square: 'x * x',
  reciprocal: 'T(1.0) / x',
  sign: 'sign(x)',
  floor: 'floor(x)',
  addScalar: 'x + T(p0)',
  mulScalar: 'x * T(p0)',
  /** p0 * x + p1 */
  affine: 'x * T(p0) + T(p1)',
  rsubScalar: 'T(p0) - x',
  powScalar: 'pow_(x, T(p0))',
  clamp: 'clamp(x, T(p0), T(p1))',
  /** d/dx clamp: 1 inside [p0, p1], 0 outside */
  clampMask: 'select(T(0.0), T(1.0), (x >= T(p0)) & (x <= T(p1)))',
  eqScalar: 'select(T(0.0), T(1.0), x == T(p0))',
  ltScalar: 'select(T(0.0), T(1.0), x < T(p0))',
  gtScalar: 'select(T(0.0), T(1.0), x > T(p0))',
  leScalar: 'select(T(0.0), T(1.0), x <= T(p0))',
  geScalar: 'select(T(0.0), T(1.0), x >= T(p0))',
  /** NaN or infinity → 1 (for guards that refuse to pass NaN on) */
  nonFinite: 'select(T(0.0), T(1.0), (x != x) | (abs(x) > T(3.4028234e38)))',
} as const;
export type UnaryOp = keyof typeof UNARY;

/** Binary maps of `a` and `b`. The *Grad entries are fused backward rules (b = incoming gradient). */
export const BINARY = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  pow: 'pow_(a, b)',
  maximum: 'max(a, b)',
  minimum: 'min(a, b)',
  eq: 'select(T(0.0), T(1.0), a == b)',
  ne: 'select(T(0.0), T(1.0), a != b)',
  lt: 'select(T(0.0), T(1.0), a < b)',
  le: 'select(T(0.0), T(1.0), a <= b)',
  gt: 'select(T(0.0), T(1.0), a > b)',
  ge: 'select(T(0.0), T(1.0), a >= b)',
  /** d relu(a) · b */
  reluGrad: 'select(T(0.0), b, a > T(0.0))',
  /** d silu(a) · b: s (1 + a (1 - s)) with s = sigmoid(a) */
  siluGrad: 'b * sig_(a) * (T(1.0) + a * (T(1.0) - sig_(a)))',
  /** d gelu(a) · b: Φ(a) + a φ(a) */
  geluGrad:
    'b * (T(0.5) * (T(1.0) + erf_(a * T(0.7071067811865476))) + a * T(0.3989422804014327) * exp(T(-0.5) * a * a))',
  /** d geluTanh(a) · b: 0.5 (1 + t) + 0.5 a (1 - t²) √(2/π) (1 + 3 · 0.044715 a²), t = tanh(inner) */
  geluTanhGrad: 'b * geluTanhGrad_(a)',
  /** given y = tanh(x): (1 - y²) · b */
  tanhGrad: 'b * (T(1.0) - a * a)',
  /** given y = sigmoid(x): y (1 - y) · b */
  sigmoidGrad: 'b * a * (T(1.0) - a)',
} as const;
export type BinaryOp = keyof typeof BINARY;

/** Helper functions any map expression may call; generic over T (the matmul epilogue uses them too). */
export const PRELUDE = `
fn erf_(x: T) -> T {
  // Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7.
  let s = sign(x);
  let a = abs(x);
  let t = T(1.0) / (T(1.0) + T(0.3275911) * a);
  let poly = ((((T(1.061405429) * t - T(1.453152027)) * t + T(1.421413741)) * t - T(0.284496736)) * t + T(0.254829592)) * t;
  return s * (T(1.0) - poly * exp(-a * a));
}
fn sig_(x: T) -> T { return T(1.0) / (T(1.0) + exp(-x)); }
// A quiet NaN made at run time: a NaN constant is a shader-creation error in WGSL.
var<private> nanBits_: u32 = 0x7fc00000u;
// tanh(√(2/π) (x + 0.044715 x³)), its argument clamped as UNARY.tanh's (x³ may overflow to ±inf).
fn geluTanhInner_(x: T) -> T { return tanh(clamp(T(0.7978845608028654) * (x + T(0.044715) * x * x * x), T(-15.0), T(15.0))); }
fn geluTanhGrad_(x: T) -> T {
  let t = geluTanhInner_(x);
  // Beyond |x| = 10, t is ±1 in f32 and the second term is 0; clamping keeps x³ from giving 0 · inf.
  let c = clamp(x, T(-10.0), T(10.0));
  return T(0.5) * (T(1.0) + t) + T(0.5) * c * (T(1.0) - t * t) * T(0.7978845608028654) * (T(1.0) + T(0.134145) * c * c);
}
fn pow_(x: T, p: T) -> T {
  // WGSL's pow and log2 are undefined for x < 0 (drivers differ), so negative bases follow
  // JavaScript and PyTorch explicitly: integer exponents by parity, any other exponent is NaN.
  let r = exp2(p * log2(abs(x)));
  let isInt = floor(p) == p;
  let odd = isInt & (abs(p - T(2.0) * floor(p * T(0.5))) == T(1.0));
  let negative = select(T(bitcast<f32>(nanBits_)), select(r, -r, odd), isInt);
  return select(select(r, negative, x < T(0.0)), T(1.0), p == T(0.0));
}
`;

/**
 * WGSL mapping the linear index `i` to one offset per operand through `rank` axes of `u.shape`,
 * unrolled with constant indices: a loop over dynamically indexed uniform arrays compiles to
 * code about ten times slower on llvmpipe. `offsets` maps each offset variable to its stride
 * array in the uniform and its starting value.
 */
function stridedOffsets(rank: number, offsets: Record<string, { strides: string; start: string }>): string {
  const lines = ['var rem = i;'];
  for (const [name, o] of Object.entries(offsets)) lines.push(`var ${name} = ${o.start};`);
  for (let d = rank - 1; d >= 0; d--) {
    const at = (arr: string) => `u.${arr}[${d >> 2}][${d & 3}]`;
    lines.push(d > 0 ? `let c${d} = rem % ${at('shape')}; rem = rem / ${at('shape')};` : `let c${d} = rem;`);
    for (const [name, o] of Object.entries(offsets)) lines.push(`${name} += c${d} * ${at(o.strides)};`);
  }
  return lines.join('\n  ');
}

function checkRank(rank: number, what: string): void {
  if (!Number.isInteger(rank) || rank < 1 || rank > MAX_RANK) throw new Error(`${what}: rank ${rank} outside 1..${MAX_RANK}`);
}

/** Linear invocation index over the 2-D grid of `grid` (more than 65535 workgroups need y). */
export const LINEAR_ID = 'let i = gid.x + gid.y * u.stride;';

/** Unary map over contiguous data, one vec4 per invocation. */
export function unaryKernel(op: UnaryOp): Kernel {
  return kernel(`unary_${op}`, () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
alias T = vec4<f32>;
struct U { n4: u32, stride: u32, p0: f32, p1: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y_out: array<vec4<f32>>;
${PRELUDE}
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n4) { return; }
  let x = x_in[i];
  let p0 = u.p0;
  let p1 = u.p1;
  y_out[i] = ${UNARY[op]};
}`,
  }));
}

/**
 * Binary map. 'same': both inputs contiguous with the output's shape (vec4 path).
 * 'broadcast': each input read through its own strides (0 on broadcast dimensions).
 */
export function binaryKernel(op: BinaryOp, mode: 'same' | 'broadcast', rank = 1): Kernel {
  if (mode === 'same') {
    return kernel(`binary_${op}_same`, () => ({
      inputs: ['a_in', 'b_in'],
      outputs: ['y_out'],
      uniform: 'u',
      wgsl: `
alias T = vec4<f32>;
struct U { n4: u32, stride: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b_in: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y_out: array<vec4<f32>>;
${PRELUDE}
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n4) { return; }
  let a = a_in[i];
  let b = b_in[i];
  y_out[i] = ${BINARY[op]};
}`,
    }));
  }
  checkRank(rank, 'binaryKernel');
  return kernel(`binary_${op}_broadcast_r${rank}`, () => ({
    inputs: ['a_in', 'b_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
alias T = f32;
struct U { n: u32, stride: u32, pad0: u32, pad1: u32, shape: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a_in: array<f32>;
@group(0) @binding(2) var<storage, read> b_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> y_out: array<f32>;
${PRELUDE}
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n) { return; }
  ${stridedOffsets(rank, { ia: { strides: 'sa', start: '0u' }, ib: { strides: 'sb', start: '0u' } })}
  let a = a_in[ia];
  let b = b_in[ib];
  y_out[i] = ${BINARY[op]};
}`,
  }));
}

/** y = cond != 0 ? a : b, all three broadcast through strides. */
export function whereKernel(rank = 1): Kernel {
  checkRank(rank, 'whereKernel');
  return kernel(`where_broadcast_r${rank}`, () => ({
    inputs: ['c_in', 'a_in', 'b_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { n: u32, stride: u32, pad0: u32, pad1: u32, shape: array<vec4<u32>, 2>, sc: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> c_in: array<f32>;
@group(0) @binding(2) var<storage, read> a_in: array<f32>;
@group(0) @binding(3) var<storage, read> b_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> y_out: array<f32>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n) { return; }
  ${stridedOffsets(rank, { ic: { strides: 'sc', start: '0u' }, ia: { strides: 'sa', start: '0u' }, ib: { strides: 'sb', start: '0u' } })}
  y_out[i] = select(b_in[ib], a_in[ia], c_in[ic] != 0.0);
}`,
  }));
}

/**
 * Uniform, bindings and the opening of `main` of the strided gather and scatter: `i<axis>` is the
 * strided offset (strides `s<axis>`, from `u.offset`) of the contiguous element i.
 */
function stridedCopyHeader(rank: number, axis: 'x' | 'y'): string {
  return `struct U { n: u32, stride: u32, pad: u32, offset: u32, shape: array<vec4<u32>, 2>, s${axis}: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<u32>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n) { return; }
  ${stridedOffsets(rank, { [`i${axis}`]: { strides: `s${axis}`, start: 'u.offset' } })}`;
}

/**
 * Strided gather, dtype-agnostic (copies 32-bit words): y[i] = x[offset + Σ c_d · stride_d] where
 * c is i's coordinate in `shape`. Serves permute, slice, expand and making views contiguous.
 */
export function gatherStridedKernel(rank = 1): Kernel {
  checkRank(rank, 'gatherStridedKernel');
  return kernel(`gather_strided_r${rank}`, () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
${stridedCopyHeader(rank, 'x')}
  y_out[i] = x_in[ix];
}`,
  }));
}

/**
 * Strided scatter, dtype-agnostic: y[offset + Σ c_d · stride_d] = x[i]. Writes a contiguous
 * tensor into a region of a larger one (concat, the backward of slice). Elements of y outside
 * the region are left as they are.
 */
export function scatterStridedKernel(rank = 1): Kernel {
  checkRank(rank, 'scatterStridedKernel');
  return kernel(`scatter_strided_r${rank}`, () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
${stridedCopyHeader(rank, 'y')}
  y_out[iy] = x_in[i];
}`,
  }));
}

/** Fills with one 32-bit pattern (0.0, 1.0, a constant or an int32), vec4 at a time. */
export function fillKernel(): Kernel {
  return kernel('fill', () => ({
    inputs: [],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { n4: u32, stride: u32, bits: u32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> y_out: array<vec4<u32>>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n4) { return; }
  y_out[i] = vec4<u32>(u.bits);
}`,
  }));
}

/** y[i] = start + i · step (float32) or the int32 equivalent. */
export function arangeKernel(dtype: 'f32' | 'i32'): Kernel {
  return kernel(`arange_${dtype}`, () => ({
    inputs: [],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { n: u32, stride: u32, start: f32, step: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> y_out: array<${dtype}>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n) { return; }
  y_out[i] = ${dtype}(u.start + f32(i) * u.step);
}`,
  }));
}

/** Converts between float32 and int32 (float → int truncates toward zero). */
export function castKernel(from: 'f32' | 'i32', to: 'f32' | 'i32'): Kernel {
  return kernel(`cast_${from}_${to}`, () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { n: u32, stride: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<${from}>;
@group(0) @binding(2) var<storage, read_write> y_out: array<${to}>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n) { return; }
  y_out[i] = ${to}(x_in[i]);
}`,
  }));
}

/** Uniform, bindings and the opening of `main` shared by index_select and its backward. */
function indexSelectHeader(src: string, dst: string): string {
  return `struct U { n: u32, stride: u32, rows: u32, k: u32, inner: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> ${src}: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> ${dst}: array<f32>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n) { return; }`;
}

/**
 * Rows of `table` picked by int32 `index` along axis 1 of a [outer, rows, inner] view:
 * y[o, j, k] = table[o, index[j], k]. Out-of-range indices write NaN (checked on the CPU where the
 * indices are known; on the GPU they cannot be read without a stall).
 */
export function indexSelectKernel(): Kernel {
  return kernel('index_select', () => ({
    inputs: ['table', 'index'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
${indexSelectHeader('table', 'y_out')}
  let inner = i % u.inner;
  let j = (i / u.inner) % u.k;
  let o = i / (u.inner * u.k);
  let r = index[j];
  if (r < 0 || u32(r) >= u.rows) {
    // NaN built from a uniform: a constant NaN is a WGSL compile error (pad0 is always 0).
    y_out[i] = bitcast<f32>(u.pad0 | 0x7fc00000u);
    return;
  }
  y_out[i] = table[(o * u.rows + u32(r)) * u.inner + inner];
}`,
  }));
}

/**
 * Backward of index_select without atomics: each element of the table gradient sums the
 * incoming rows whose index points at it: dt[o, r, k] = Σ_{j: index[j] = r} g[o, j, k].
 */
export function indexSelectBackwardKernel(): Kernel {
  return kernel('index_select_backward', () => ({
    inputs: ['g_in', 'index'],
    outputs: ['dt_out'],
    uniform: 'u',
    wgsl: `
${indexSelectHeader('g_in', 'dt_out')}
  let inner = i % u.inner;
  let r = (i / u.inner) % u.rows;
  let o = i / (u.inner * u.rows);
  var acc = 0.0;
  for (var j = 0u; j < u.k; j++) {
    if (index[j] == i32(r)) { acc += g_in[(o * u.k + j) * u.inner + inner]; }
  }
  dt_out[i] = acc;
}`,
  }));
}

/** Workgroup grid for `n` invocations of `wg` each: [x, y] and the row stride in invocations. */
export function grid(n: number, wg = EW_WORKGROUP, maxPerDim = 65535): { workgroups: [number, number]; stride: number } {
  const groups = Math.max(1, Math.ceil(n / wg));
  const x = Math.min(groups, maxPerDim);
  const y = Math.ceil(groups / x);
  return { workgroups: [x, y], stride: x * wg };
}
