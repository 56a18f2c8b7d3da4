/**
 * Fused group normalisation over [rows, len] views (row = one (sample, group) pair, len = channels
 * per group × spatial size), with a per-channel affine transform. One workgroup per row keeps the
 * row in cache across its passes: mean, then variance around it (two passes, stable), then the
 * normalised output. The backward pass recomputes x̂ from the saved mean and 1/σ.
 */
import { kernel, type Kernel } from './registry.js';
import { ROW_SHARED, ROW_WORKGROUP, rowCode, workgroupSum, type RowMode } from './rows.js';

/** Bindings 1-5 of both backward kernels (their `inputs`, in order). */
const BACKWARD_INPUTS = `@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> g_in: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;`;
const BACKWARD_INPUT_NAMES = ['x_in', 'g_in', 'gamma', 'beta', 'stats'];

// The incoming gradient through the optional SiLU epilogue (ĝ), and times γ (gy); z is recomputed.
const SILU_GRAD_FN = `
fn epilogueGrad(g: f32, xh: f32, c: u32) -> f32 {
  if (u.silu == 0u) { return g; }
  var z = xh;
  if (u.affine == 1u) { z = xh * gamma[c] + beta[c]; }
  let s = 1.0 / (1.0 + exp(-z));
  return g * s * (1.0 + z * (1.0 - s));
}
fn scaledGrad(g: f32, xh: f32, c: u32) -> f32 {
  let e = epilogueGrad(g, xh, c);
  if (u.affine == 1u) { return e * gamma[c]; }
  return e;
}
`;

/** y = (x - mean) / sqrt(var + eps) · γ[c] + β[c], then SiLU if asked; stats[row] = (mean, 1/σ). */
export function groupNormForwardKernel(mode: RowMode): Kernel {
  const r = rowCode(mode);
  return kernel(`group_norm_forward_${mode}`, () => ({
    inputs: ['x_in', 'gamma', 'beta'],
    outputs: ['y_out', 'stats'],
    uniform: 'u',
    wgsl: `
struct U { rows: u32, len: u32, spatial: u32, channelsPerGroup: u32, groups: u32, gridX: u32, eps: f32, affine: u32, silu: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
${r.shared}
${r.header}
  let valid = row < u.rows;
  let base = row * u.len;
  var s = 0.0;
  if (valid) { for (var j = lid; j < u.len; j += ${r.stride}) { s += x_in[base + j]; } }
  ${r.sum('total', 's')}
  let mean = total / f32(u.len);
  var q = 0.0;
  if (valid) { for (var j = lid; j < u.len; j += ${r.stride}) { let d = x_in[base + j] - mean; q += d * d; } }
  ${r.sum('squares', 'q')}
  let rstd = inverseSqrt(squares / f32(u.len) + u.eps);
  if (!valid) { return; }
  let c0 = (row % u.groups) * u.channelsPerGroup;
  for (var j = lid; j < u.len; j += ${r.stride}) {
    let c = c0 + j / u.spatial;
    var v = (x_in[base + j] - mean) * rstd;
    if (u.affine == 1u) { v = v * gamma[c] + beta[c]; }
    if (u.silu == 1u) { v = v / (1.0 + exp(-v)); }
    y_out[base + j] = v;
  }
  if (lid == 0u) {
    stats[2u * row] = mean;
    stats[2u * row + 1u] = rstd;
  }
}`,
  }));
}

/**
 * dx for one row: with x̂ = (x - mean) / σ, z = x̂ γ[c] + β[c], ĝ = g · silu'(z) (or g without the
 * SiLU epilogue) and gy = ĝ · γ[c]: dx = (gy - mean(gy) - x̂ · mean(gy · x̂)) / σ.
 */
export function groupNormBackwardInputKernel(mode: RowMode): Kernel {
  const r = rowCode(mode);
  return kernel(`group_norm_backward_input_${mode}`, () => ({
    inputs: BACKWARD_INPUT_NAMES,
    outputs: ['dx_out'],
    uniform: 'u',
    wgsl: `
struct U { rows: u32, len: u32, spatial: u32, channelsPerGroup: u32, groups: u32, gridX: u32, affine: u32, silu: u32 }
@group(0) @binding(0) var<uniform> u: U;
${BACKWARD_INPUTS}
@group(0) @binding(6) var<storage, read_write> dx_out: array<f32>;
${r.shared}
${SILU_GRAD_FN}
${r.header}
  let valid = row < u.rows;
  let safeRow = min(row, u.rows - 1u);
  let base = safeRow * u.len;
  let mean = stats[2u * safeRow];
  let rstd = stats[2u * safeRow + 1u];
  let c0 = (safeRow % u.groups) * u.channelsPerGroup;
  var sg = 0.0;
  var sgx = 0.0;
  if (valid) {
    for (var j = lid; j < u.len; j += ${r.stride}) {
      let xh = (x_in[base + j] - mean) * rstd;
      let gy = scaledGrad(g_in[base + j], xh, c0 + j / u.spatial);
      sg += gy;
      sgx += gy * xh;
    }
  }
  let n = f32(u.len);
  ${r.sum('totalG', 'sg')}
  ${r.sum('totalGx', 'sgx')}
  let mg = totalG / n;
  let mgx = totalGx / n;
  if (!valid) { return; }
  for (var j = lid; j < u.len; j += ${r.stride}) {
    let xh = (x_in[base + j] - mean) * rstd;
    dx_out[base + j] = (scaledGrad(g_in[base + j], xh, c0 + j / u.spatial) - mg - xh * mgx) * rstd;
  }
}`,
  }));
}

/** Per channel c: dγ[c] = Σ_{n, s} ĝ · x̂ and dβ[c] = Σ_{n, s} ĝ (one workgroup per channel). */
export function groupNormBackwardAffineKernel(): Kernel {
  const wg = ROW_WORKGROUP;
  return kernel('group_norm_backward_affine', () => ({
    inputs: BACKWARD_INPUT_NAMES,
    outputs: ['dgamma', 'dbeta'],
    uniform: 'u',
    wgsl: `
struct U { batch: u32, channels: u32, spatial: u32, channelsPerGroup: u32, groups: u32, affine: u32, silu: u32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
${BACKWARD_INPUTS}
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
${ROW_SHARED}
${SILU_GRAD_FN}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let group = c / u.channelsPerGroup;
  var sgx = 0.0;
  var sg = 0.0;
  let total = u.batch * u.spatial;
  for (var k = lid; k < total; k += ${wg}u) {
    let n = k / u.spatial;
    let idx = (n * u.channels + c) * u.spatial + k % u.spatial;
    let row = n * u.groups + group;
    let xh = (x_in[idx] - stats[2u * row]) * stats[2u * row + 1u];
    let g = epilogueGrad(g_in[idx], xh, c);
    sg += g;
    sgx += g * xh;
  }
  ${workgroupSum('a', 'sgx')}
  ${workgroupSum('b', 'sg')}
  if (lid == 0u) {
    dgamma[c] = a;
    dbeta[c] = b;
  }
}`,
  }));
}
