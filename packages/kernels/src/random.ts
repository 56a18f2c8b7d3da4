/**
 * Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11). Element block i (4 numbers)
 * is a pure function of (key, counter = offset + i), so the same seed gives the same numbers on
 * any adapter and in any dispatch order. The 32x32→64-bit product WGSL lacks is built from
 * 16-bit halves.
 */
import { kernel, type Kernel } from './registry.js';

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;

const PHILOX_WGSL = `
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu; let a1 = a >> 16u;
  let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p10 = a1 * b0; let p01 = a0 * b1; let p11 = a1 * b1;
  // cannot overflow: each term is below 2^16 or is a 16x16-bit product
  let mid = (p00 >> 16u) + (p10 & 0xffffu) + p01;
  return vec2<u32>(p11 + (p10 >> 16u) + (mid >> 16u), (mid << 16u) | (p00 & 0xffffu));
}
fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    let x = mulhilo(${PHILOX_M0}u, c.x);
    let y = mulhilo(${PHILOX_M1}u, c.z);
    c = vec4<u32>(y.x ^ c.y ^ k.x, y.y, x.x ^ c.w ^ k.y, x.y);
    k = k + vec2<u32>(${PHILOX_W0}u, ${PHILOX_W1}u);
  }
  return c;
}
// 24 random bits to a float in [0, 1) (or (0, 1] with plusOne).
fn unit(v: vec4<u32>) -> vec4<f32> { return vec4<f32>(v >> vec4<u32>(8u)) * 5.9604644775390625e-8; }
`;

/** dist 'uniform': U[lo, hi) with p0 = lo, p1 = hi. 'normal': N(p0, p1²) by Box–Muller. */
export function randomKernel(dist: 'uniform' | 'normal'): Kernel {
  const body =
    dist === 'uniform'
      ? 'let v = vec4<f32>(u.p0) + unit(bits) * (u.p1 - u.p0);'
      : `let uv = unit(bits);
  let r0 = sqrt(-2.0 * log(1.0 - uv.x));
  let r1 = sqrt(-2.0 * log(1.0 - uv.z));
  let t0 = 6.283185307179586 * uv.y;
  let t1 = 6.283185307179586 * uv.w;
  let v = vec4<f32>(u.p0) + u.p1 * vec4<f32>(r0 * cos(t0), r0 * sin(t0), r1 * cos(t1), r1 * sin(t1));`;
  return kernel(`random_${dist}`, () => ({
    inputs: [],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { n4: u32, stride: u32, key0: u32, key1: u32, offset: u32, p0: f32, p1: f32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> y_out: array<vec4<f32>>;
${PHILOX_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.stride;
  if (i >= u.n4) { return; }
  let bits = philox(vec4<u32>(u.offset + i, 0u, 0u, 0u), vec2<u32>(u.key0, u.key1));
  ${body}
  y_out[i] = v;
}`,
  }));
}

/** Philox4x32-10 on the CPU, the reference the GPU kernel is tested against. */
export function philoxReference(counter: [number, number, number, number], key: [number, number]): [number, number, number, number] {
  const mulhilo = (a: number, b: number): [number, number] => {
    const p = BigInt(a >>> 0) * BigInt(b >>> 0);
    return [Number(p >> 32n) >>> 0, Number(p & 0xffffffffn) >>> 0];
  };
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let r = 0; r < 10; r++) {
    const [hi0, lo0] = mulhilo(PHILOX_M0, c0);
    const [hi1, lo1] = mulhilo(PHILOX_M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + PHILOX_W0) >>> 0;
    k1 = (k1 + PHILOX_W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}
