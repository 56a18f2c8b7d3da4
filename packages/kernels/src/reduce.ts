/**
 * Reductions over the middle axis of an [outer, R, inner] view (any set of adjacent axes maps to
 * one; other axis sets are permuted first by the caller).
 *
 * - `reduceRowsKernel` (inner = 1): one workgroup per (row, chunk) strides over its part of the
 *   row, then a tree in workgroup memory. Long rows are split into chunks whose partials a second
 *   pass reduces, so a 16M-element sum uses many workgroups, not one.
 * - `reduceColsKernel` (inner > 1): one invocation per output loops over R; neighbouring
 *   invocations read neighbouring addresses.
 */
import { kernel, type Kernel } from './registry.js';

export type ReduceOp = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';
export const REDUCE_WORKGROUP = 64;

function combine(op: ReduceOp): string {
  switch (op) {
    case 'sum':
      return 'acc = acc + v;';
    case 'max':
      return 'acc = max(acc, v);';
    case 'min':
      return 'acc = min(acc, v);';
    case 'argmax':
      return 'if (v > acc) { acc = v; idx = j; }';
    case 'argmin':
      return 'if (v < acc) { acc = v; idx = j; }';
  }
}

const isArg = (op: ReduceOp) => op === 'argmax' || op === 'argmin';

/**
 * Per (row, chunk): out[row * chunks + chunk] = reduce(x[row * R + j]) for j in the chunk, times
 * `scale` (1, or 1/R for a mean on the last pass). `init` is the identity (0, -inf, +inf), passed
 * as a uniform because WGSL constant expressions cannot be infinite.
 */
export function reduceRowsKernel(op: ReduceOp): Kernel {
  const arg = isArg(op);
  const wg = REDUCE_WORKGROUP;
  return kernel(`reduce_rows_${op}`, () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { rows: u32, len: u32, chunkLen: u32, chunks: u32, gridX: u32, scale: f32, init: f32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<${arg ? 'i32' : 'f32'}>;
var<workgroup> vals: array<f32, ${wg}>;
${arg ? `var<workgroup> idxs: array<u32, ${wg}>;` : ''}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = wid.x + wid.y * u.gridX;
  let valid = item < u.rows * u.chunks;
  let row = item / u.chunks;
  let chunk = item % u.chunks;
  let begin = chunk * u.chunkLen;
  let end = min(u.len, begin + u.chunkLen);
  var acc = u.init;
  var idx = 0u;
  if (valid) {
    for (var j = begin + lid; j < end; j += ${wg}u) {
      let v = x_in[row * u.len + j];
      ${combine(op)}
    }
  }
  vals[lid] = acc;
  ${arg ? 'idxs[lid] = idx;' : ''}
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      ${
        arg
          ? `let v = vals[lid + s];
      let j = idxs[lid + s];
      let better = ${op === 'argmax' ? 'v > vals[lid]' : 'v < vals[lid]'} || (v == vals[lid] && j < idxs[lid]);
      if (better) { vals[lid] = v; idxs[lid] = j; }`
          : `var acc2 = vals[lid];
      let v = vals[lid + s];
      ${combine(op).replace(/acc/g, 'acc2')}
      vals[lid] = acc2;`
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u && valid) {
    ${arg ? 'y_out[item] = i32(idxs[0]);' : 'y_out[item] = vals[0] * u.scale;'}
  }
}`,
  }));
}

/** out[o * inner + k] = reduce_r x[(o * R + r) * inner + k] · scale. */
export function reduceColsKernel(op: ReduceOp): Kernel {
  const arg = isArg(op);
  return kernel(`reduce_cols_${op}`, () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { n: u32, stride: u32, len: u32, inner: u32, scale: f32, init: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<${arg ? 'i32' : 'f32'}>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.stride;
  if (i >= u.n) { return; }
  let k = i % u.inner;
  let base = (i / u.inner) * u.len * u.inner + k;
  var acc = u.init;
  var idx = 0u;
  for (var j = 0u; j < u.len; j++) {
    let v = x_in[base + j * u.inner];
    ${combine(op)}
  }
  ${arg ? 'y_out[i] = i32(idx);' : 'y_out[i] = acc * u.scale;'}
}`,
  }));
}
