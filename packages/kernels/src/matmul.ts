/**
 * Batched matmul C[b] = A[b] · B[b] with A read through (row, k) strides and B through (k, col)
 * strides, so transposed operands and broadcast batches need no copies (stride 0 on a broadcast
 * batch). Each invocation accumulates a 4x4 block of C in registers.
 */
import { kernel, type Kernel } from './registry.js';

export const MATMUL_TILE = 4;
export const MATMUL_WG: [number, number] = [8, 8];

export function matmulKernel(): Kernel {
  const [wx, wy] = MATMUL_WG;
  return kernel('matmul_generic', () => ({
    inputs: ['a_in', 'b_in'],
    outputs: ['c_out'],
    uniform: 'u',
    wgsl: `
struct U { M: u32, N: u32, K: u32, sam: u32, sak: u32, sbk: u32, sbn: u32, sab: u32, sbb: u32, alpha: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a_in: array<f32>;
@group(0) @binding(2) var<storage, read> b_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> c_out: array<f32>;
@compute @workgroup_size(${wx}, ${wy}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let batch = gid.z;
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= u.M || col0 >= u.N) { return; }
  // Rows and columns past the edge read a valid neighbour; their sums are never stored.
  let ar = vec4<u32>(min(row0, u.M - 1u), min(row0 + 1u, u.M - 1u), min(row0 + 2u, u.M - 1u), min(row0 + 3u, u.M - 1u)) * u.sam + batch * u.sab;
  let bc = vec4<u32>(min(col0, u.N - 1u), min(col0 + 1u, u.N - 1u), min(col0 + 2u, u.N - 1u), min(col0 + 3u, u.N - 1u)) * u.sbn + batch * u.sbb;
  var c0 = vec4<f32>(0.0);
  var c1 = vec4<f32>(0.0);
  var c2 = vec4<f32>(0.0);
  var c3 = vec4<f32>(0.0);
  for (var k = 0u; k < u.K; k++) {
    let ka = k * u.sak;
    let kb = k * u.sbk;
    let b = vec4<f32>(b_in[bc.x + kb], b_in[bc.y + kb], b_in[bc.z + kb], b_in[bc.w + kb]);
    c0 += a_in[ar.x + ka] * b;
    c1 += a_in[ar.y + ka] * b;
    c2 += a_in[ar.z + ka] * b;
    c3 += a_in[ar.w + ka] * b;
  }
  let base = batch * u.M * u.N;
  let rows = array<vec4<f32>, 4>(c0, c1, c2, c3);
  for (var r = 0u; r < 4u; r++) {
    let row = row0 + r;
    if (row >= u.M) { break; }
    for (var c = 0u; c < 4u; c++) {
      if (col0 + c < u.N) { c_out[base + row * u.N + col0 + c] = rows[r][c] * u.alpha; }
    }
  }
}`,
  }));
}
