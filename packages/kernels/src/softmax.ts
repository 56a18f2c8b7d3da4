/**
 * The softmax family along the middle axis of an [outer, len, inner] view, fused into one pass
 * per row in each direction, on the row kernels of rows.ts.
 */
import { kernel, type Kernel } from './registry.js';
import { rowCode, type RowMode } from './rows.js';

// Shared by the softmax kernels: row r of the [outer, len, inner] view is (r / inner, r % inner);
// its element j lies at base + j * inner.
const SOFTMAX_UNIFORM = `struct U { rows: u32, len: u32, inner: u32, gridX: u32 }
@group(0) @binding(0) var<uniform> u: U;`;
const SOFTMAX_ROW = `let valid = row < u.rows;
  let safeRow = min(row, u.rows - 1u);
  let base = (safeRow / u.inner) * u.len * u.inner + safeRow % u.inner;`;

/**
 * Softmax (or log-softmax) along the middle axis of an [outer, len, inner] view in one kernel: per
 * row the maximum, then Σ exp(x - max), then the output; the row stays in cache across the three
 * passes, so x is read from memory about once. Rows are (outer, inner) pairs, `inner` apart.
 */
export function softmaxKernel(mode: RowMode, logOutput: boolean): Kernel {
  const r = rowCode(mode);
  return kernel(`${logOutput ? 'log_softmax' : 'softmax'}_${mode}`, () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
${SOFTMAX_UNIFORM}
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<f32>;
${r.shared}
${r.header}
  ${SOFTMAX_ROW}
  var m = -3.4028234e38;
  if (valid) { for (var j = lid; j < u.len; j += ${r.stride}) { m = max(m, x_in[base + j * u.inner]); } }
  ${r.max('rowMax', 'm')}
  var s = 0.0;
  if (valid) { for (var j = lid; j < u.len; j += ${r.stride}) { s += exp(x_in[base + j * u.inner] - rowMax); } }
  ${r.sum('total', 's')}
  if (!valid) { return; }
  ${logOutput ? 'let shift = rowMax + log(total);' : 'let inv = 1.0 / total;'}
  for (var j = lid; j < u.len; j += ${r.stride}) {
    let at = base + j * u.inner;
    y_out[at] = ${logOutput ? 'x_in[at] - shift' : 'exp(x_in[at] - rowMax) * inv'};
  }
}`,
  }));
}

/**
 * The backward of softmaxKernel from its output y and the incoming gradient g, per row:
 * softmax: dx = y · (g - Σ g·y); log-softmax: dx = g - exp(y) · Σ g.
 */
export function softmaxBackwardKernel(mode: RowMode, logOutput: boolean): Kernel {
  const r = rowCode(mode);
  return kernel(`${logOutput ? 'log_softmax' : 'softmax'}_backward_${mode}`, () => ({
    inputs: ['y_in', 'g_in'],
    outputs: ['dx_out'],
    uniform: 'u',
    wgsl: `
${SOFTMAX_UNIFORM}
@group(0) @binding(1) var<storage, read> y_in: array<f32>;
@group(0) @binding(2) var<storage, read> g_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx_out: array<f32>;
${r.shared}
${r.header}
  ${SOFTMAX_ROW}
  var s = 0.0;
  if (valid) {
    for (var j = lid; j < u.len; j += ${r.stride}) {
      let at = base + j * u.inner;
      s += ${logOutput ? 'g_in[at]' : 'g_in[at] * y_in[at]'};
    }
  }
  ${r.sum('total', 's')}
  if (!valid) { return; }
  for (var j = lid; j < u.len; j += ${r.stride}) {
    let at = base + j * u.inner;
    dx_out[at] = ${logOutput ? 'g_in[at] - exp(y_in[at]) * total' : 'y_in[at] * (g_in[at] - total)'};
  }
}`,
  }));
}
