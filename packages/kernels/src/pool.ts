/**
 * The window ops of the U-Net: `poolSumKernel` and `poolSpreadKernel` are a k x k window sum
 * with stride s (times a scale) and its transpose. Average pooling and the gradient of nearest
 * upsampling are the first; nearest upsampling and the gradient of average pooling the second.
 */
import { kernel, type Kernel } from './registry.js';

/** Invocations per workgroup of the pooling kernels. */
export const POOL_WG = 64;

/**
 * Both pooling kernels map a "big" grid [planes, bigH, bigW] and a "small" one
 * [planes, smallH, smallW] with small[o] covering big[o·s, o·s + k).
 */
const POOL_UNIFORM = `
struct U { n: u32, stride: u32, bigH: u32, bigW: u32, smallH: u32, smallW: u32, k: u32, s: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<f32>;`;

/** small = scale · (k x k window sums of big with stride s); one invocation per small element. */
export function poolSumKernel(): Kernel {
  return kernel('pool2d_sum', () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `${POOL_UNIFORM}
@compute @workgroup_size(${POOL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.stride;
  if (i >= u.n) { return; }
  let ox = i % u.smallW;
  let oy = (i / u.smallW) % u.smallH;
  let plane = i / (u.smallW * u.smallH);
  var base = (plane * u.bigH + oy * u.s) * u.bigW + ox * u.s;
  var acc = 0.0;
  for (var ky = 0u; ky < u.k; ky++) {
    for (var kx = 0u; kx < u.k; kx++) { acc += x_in[base + kx]; }
    base += u.bigW;
  }
  y_out[i] = acc * u.scale;
}`,
  }));
}

/** big = scale · (sum of the small elements whose window covers it): the transpose of poolSumKernel. */
export function poolSpreadKernel(): Kernel {
  return kernel('pool2d_spread', () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `${POOL_UNIFORM}
// Windows o with o·s <= i < o·s + k and o < len.
fn windows(i: u32, len: u32) -> vec2<u32> {
  let lo = select(0u, (i - u.k) / u.s + 1u, i >= u.k);
  return vec2<u32>(lo, min(len, i / u.s + 1u));
}
@compute @workgroup_size(${POOL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.stride;
  if (i >= u.n) { return; }
  let ix = i % u.bigW;
  let iy = (i / u.bigW) % u.bigH;
  let plane = i / (u.bigW * u.bigH);
  let ry = windows(iy, u.smallH);
  let rx = windows(ix, u.smallW);
  var acc = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    let row = (plane * u.smallH + oy) * u.smallW;
    for (var ox = rx.x; ox < rx.y; ox++) { acc += x_in[row + ox]; }
  }
  y_out[i] = acc * u.scale;
}`,
  }));
}
