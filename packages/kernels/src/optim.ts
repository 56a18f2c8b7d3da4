/**
 * Fused optimizer kernels: each updates one parameter (and its state) in place in a single pass,
 * one vec4 per invocation. Hyperparameters and step-dependent scalars (bias corrections, the
 * first-step flag, the gradient unscale factor) travel in the uniform, so one pipeline serves
 * every step and every parameter. Buffers are bound rounded up to 16 bytes, so the padding lanes
 * of the last vec4 are updated too; they belong to no element and are never read as data.
 */
import { EW_WORKGROUP, LINEAR_ID } from './elementwise.js';
import { kernel, type Kernel } from './registry.js';

/**
 * SGD as torch.optim.SGD: d = g·gradScale + weightDecay·p; with momentum, buf = d on the first
 * step and momentum·buf + (1 - dampening)·d after; d = nesterov ? d + momentum·buf : buf;
 * p -= lr·d. Without momentum there is no state buffer (a separate, smaller variant). Like
 * PyTorch, the CPU computes 1 - dampening in double precision (`keep` = 1 - dampening).
 */
export function sgdKernel(withMomentum: boolean): Kernel {
  const name = withMomentum ? 'sgd_momentum' : 'sgd';
  const momentumBody = withMomentum
    ? `
  var b = d;
  if (u.first == 0u) { b = u.momentum * buf[i] + u.keep * d; }
  buf[i] = b;
  if (u.nesterov != 0u) { d = d + u.momentum * b; } else { d = b; }`
    : '';
  return kernel(name, () => ({
    inputs: ['grad'],
    outputs: withMomentum ? ['param', 'buf'] : ['param'],
    uniform: 'u',
    wgsl: `
struct U { n4: u32, stride: u32, lr: f32, weightDecay: f32, gradScale: f32, momentum: f32, keep: f32, nesterov: u32, first: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;
${withMomentum ? '@group(0) @binding(3) var<storage, read_write> buf: array<vec4<f32>>;' : ''}
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n4) { return; }
  let p = param[i];
  var d = grad[i] * u.gradScale + u.weightDecay * p;${momentumBody}
  param[i] = p - u.lr * d;
}`,
  }));
}

/**
 * Adam and AdamW as torch.optim.Adam/AdamW (single-tensor form, no amsgrad):
 *   g = grad·gradScale (+ weightDecay·p for Adam's L2 penalty)
 *   p *= 1 - lr·weightDecay (AdamW's decoupled decay, `decoupled` = 1)
 *   m = lerp(m, g, 1 - beta1);  v = beta2·v + (1 - beta2)·g²
 *   p -= stepSize · m / (sqrt(v) / bc2Sqrt + eps)
 * with stepSize = lr / (1 - beta1^t), bc2Sqrt = sqrt(1 - beta2^t), decay = 1 - lr·weightDecay and
 * the 1 - beta terms computed on the CPU in double precision, as PyTorch does (1 - f32(0.999)
 * would be off by 1e-5 relative).
 */
export function adamKernel(): Kernel {
  return kernel('adam', () => ({
    inputs: ['grad'],
    outputs: ['param', 'expAvg', 'expAvgSq'],
    uniform: 'u',
    wgsl: `
struct U {
  n4: u32, stride: u32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32, eps: f32, weightDecay: f32,
  decay: f32, stepSize: f32, bc2Sqrt: f32, gradScale: f32, decoupled: u32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> expAvg: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> expAvgSq: array<vec4<f32>>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n4) { return; }
  var p = param[i];
  var g = grad[i] * u.gradScale;
  if (u.decoupled != 0u) { p = p * u.decay; } else { g = g + u.weightDecay * p; }
  let m0 = expAvg[i];
  let m = m0 + u.oneMinusBeta1 * (g - m0);
  let v = u.beta2 * expAvgSq[i] + u.oneMinusBeta2 * g * g;
  expAvg[i] = m;
  expAvgSq[i] = v;
  param[i] = p - u.stepSize * (m / (sqrt(v) / u.bc2Sqrt + u.eps));
}`,
  }));
}

/** Exponential moving average of weights, in place: shadow -= (1 - decay)·(shadow - param). */
export function emaKernel(): Kernel {
  return kernel('ema_update', () => ({
    inputs: ['param'],
    outputs: ['shadow'],
    uniform: 'u',
    wgsl: `
struct U { n4: u32, stride: u32, oneMinusDecay: f32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> shadow: array<vec4<f32>>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n4) { return; }
  let s = shadow[i];
  shadow[i] = s - u.oneMinusDecay * (s - param[i]);
}`,
  }));
}

/**
 * Gradient clipping by a norm that stays on the GPU: y = grad · min(1, maxNorm / (norm + 1e-6)),
 * as torch.nn.utils.clip_grad_norm_, with `norm` read from a one-element buffer. Out of place:
 * autograd may hand two parameters gradients on one shared buffer.
 */
export function clipScaleKernel(): Kernel {
  return kernel('clip_grad_scale', () => ({
    inputs: ['norm', 'grad'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { n4: u32, stride: u32, maxNorm: f32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y_out: array<vec4<f32>>;
@compute @workgroup_size(${EW_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${LINEAR_ID}
  if (i >= u.n4) { return; }
  y_out[i] = grad[i] * min(1.0, u.maxNorm / (norm[0] + 1e-6));
}`,
  }));
}
