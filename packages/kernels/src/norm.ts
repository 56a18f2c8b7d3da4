/**
 * Fused group normalisation over [rows, len] views (row = one (sample, group) pair, len = channels
 * per group × spatial size), with a per-channel affine transform. One workgroup per row keeps the
 * row in cache across its passes: mean, then variance around it (two passes, stable), then the
 * normalised output. The backward pass is one kernel too: it recomputes x̂ from the saved mean and
 * 1/σ, and while it reads the row for dx it also leaves the per-(sample, channel) sums that dγ and
 * dβ add up over the batch, so x and the gradient are read by one pass instead of two.
 */
import { kernel, type Kernel } from './registry.js';
import { rowCode, type RowMode } from './rows.js';

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
 * SiLU epilogue) and gy = ĝ · γ[c]: dx = (gy - mean(gy) - x̂ · mean(gy · x̂)) / σ. The row is read
 * channel by channel, so the same pass leaves partial[n, 0, c] = Σ_s ĝ · x̂ and
 * partial[n, 1, c] = Σ_s ĝ (sample n, channel c, over its spatial positions s): summed over n,
 * they are dγ[c] and dβ[c].
 */
export function groupNormBackwardKernel(mode: RowMode): Kernel {
  const r = rowCode(mode);
  return kernel(`group_norm_backward_${mode}`, () => ({
    inputs: ['x_in', 'g_in', 'gamma', 'beta', 'stats'],
    outputs: ['dx_out', 'partial'],
    uniform: 'u',
    wgsl: `
struct U { rows: u32, len: u32, spatial: u32, channelsPerGroup: u32, groups: u32, gridX: u32, affine: u32, silu: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> g_in: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> partial: array<f32>;
${r.shared}
// ĝ: the incoming gradient through the optional SiLU epilogue (z recomputed from x̂).
fn epilogueGrad(g: f32, xh: f32, c: u32) -> f32 {
  if (u.silu == 0u) { return g; }
  var z = xh;
  if (u.affine == 1u) { z = xh * gamma[c] + beta[c]; }
  let s = 1.0 / (1.0 + exp(-z));
  return g * s * (1.0 + z * (1.0 - s));
}
fn gammaOf(c: u32) -> f32 {
  if (u.affine == 1u) { return gamma[c]; }
  return 1.0;
}
${r.header}
  let valid = row < u.rows;
  let safeRow = min(row, u.rows - 1u);
  let base = safeRow * u.len;
  let mean = stats[2u * safeRow];
  let rstd = stats[2u * safeRow + 1u];
  let c0 = (safeRow % u.groups) * u.channelsPerGroup;
  let sample = safeRow / u.groups;
  let channels = u.groups * u.channelsPerGroup;
  var sg = 0.0;
  var sgx = 0.0;
  for (var k = 0u; k < u.channelsPerGroup; k++) {
    let c = c0 + k;
    var se = 0.0;
    var sex = 0.0;
    if (valid) {
      for (var s = lid; s < u.spatial; s += ${r.stride}) {
        let j = k * u.spatial + s;
        let xh = (x_in[base + j] - mean) * rstd;
        let e = epilogueGrad(g_in[base + j], xh, c);
        se += e;
        sex += e * xh;
      }
    }
    ${r.sum('channelE', 'se')}
    ${r.sum('channelEx', 'sex')}
    if (valid && lid == 0u) {
      partial[(2u * sample) * channels + c] = channelEx;
      partial[(2u * sample + 1u) * channels + c] = channelE;
    }
    sg += gammaOf(c) * channelE;
    sgx += gammaOf(c) * channelEx;
  }
  let mg = sg / f32(u.len);
  let mgx = sgx / f32(u.len);
  if (!valid) { return; }
  for (var j = lid; j < u.len; j += ${r.stride}) {
    let c = c0 + j / u.spatial;
    let xh = (x_in[base + j] - mean) * rstd;
    dx_out[base + j] = (epilogueGrad(g_in[base + j], xh, c) * gammaOf(c) - mg - xh * mgx) * rstd;
  }
}`,
  }));
}
