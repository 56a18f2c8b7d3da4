/**
 * 2-D convolution (NCHW) as implicit GEMM.
 *
 * `convKernel` computes out[n, g·outCg + oc, oy, ox] = Σ_{ic, ky, kx} in[n, g·redC + ic, iy, ix] ·
 * w(g, oc, ic, ky, kx) (+ bias), where iy = (oy·sA + ky·dA − pA) / sB must be a whole number
 * inside the input (likewise ix). The forward conv is sA = stride, dA = dilation, pA = padding,
 * sB = 1; its input gradient (a transposed conv) is the same kernel with sA = 1, dA = −dilation,
 * pA = −padding, sB = stride and the weight's two channel axes swapped. A block holds pixels of
 * one phase (oy mod sB, ox mod sB), which all take the same taps, so a strided input gradient
 * skips the taps that do not land instead of masking them.
 * `convRowKernel` is the same conv for the common case of taps and pixels 1 apart along x: each
 * input of a row segment is loaded once and reused by all kw taps.
 * Both read the weights repacked by `convPackWeightsKernel`, one vec4 per 4 output channels.
 *
 * `convWeightGradKernel` and `convWeightGradRowKernel` compute the weight gradient
 * dw[split, g·outCg + oc, ic, ky, kx] = Σ over the split's batch items and output pixels of dy · x;
 * the row one reads dy channels-last (`convPackChannelsKernel`).
 *
 * Shaped by measurements on llvmpipe (Vulkan lavapipe and OpenGL): each invocation keeps a block
 * of outputs in registers and reads its operands straight from storage (a barrier costs more
 * there than the loads workgroup memory would save); loads, not FMAs, bound the speed, so blocks
 * reuse each load as often as registers allow and channels come as vec4s; the output-channel
 * block comes from the workgroup id, so weight (or dy) addresses are the same for every
 * invocation of a workgroup; tap validity and addresses are worked out once per tap, outside
 * the channel loop.
 */
import { kernel, type Kernel } from './registry.js';
import { storeBlock } from './store.js';

/** Register block and workgroup of a conv kernel variant. */
export interface ConvBlocking {
  /** Output channels per invocation (a multiple of 4). */
  tco: number;
  /** Output pixels per invocation (a multiple of 4 for convKernel). */
  tpx: number;
  /** Invocations per workgroup. */
  wg: number;
}

/** Register block of a weight-gradient kernel. */
export interface ConvWeightGradBlocking {
  /** Output channels (of the forward conv) per invocation (a multiple of 4). */
  tco: number;
  /** Input channels per invocation (a multiple of 4 for convWeightGradKernel). */
  tci: number;
  wg: number;
}

/** A row kernel's register block and its kernel width, which is a template constant. */
export type ConvRowBlocking = ConvBlocking & { kw: number };
export type ConvWeightGradRowBlocking = ConvWeightGradBlocking & { kw: number };

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const LANES = ['x', 'y', 'z', 'w'];

function checkBlock(what: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v <= 0 || v % 4 !== 0) throw new Error(`${what}: ${k} must be a positive multiple of 4, got ${v}`);
  }
}

/** Bindings of the two forward conv kernels: input, packed weights (vec4s of output channels), bias, output. */
const CONV_BINDINGS = { inputs: ['x_in', 'w_in', 'b_in'], outputs: ['y_out'], uniform: 'u' };
const CONV_BUFFERS = `@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> w_in: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> y_out: array<f32>;`;

/** Bindings of the two weight-gradient kernels: input, output gradient (read as `dyType`), weight gradient. */
const WGRAD_BINDINGS = { inputs: ['x_in', 'dy_in'], outputs: ['dw_out'], uniform: 'u' };
const wgradBuffers = (dyType: string) => `@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> dy_in: array<${dyType}>;
@group(0) @binding(3) var<storage, read_write> dw_out: array<f32>;`;

/** Block members 4i .. 4i + 3 as a vec4<u32>. */
const quad = (i: number) => `vec4<u32>(${4 * i}u, ${4 * i + 1}u, ${4 * i + 2}u, ${4 * i + 3}u)`;
/** Vectors of 4 consecutive block members: base + 4i + (0, 1, 2, 3). */
const v4 = (base: string, i: number) => `vec4<u32>(${base}) + ${quad(i)}`;

export function convKernel(b: ConvBlocking): Kernel {
  checkBlock('convKernel', { tco: b.tco, tpx: b.tpx });
  const PV = range(b.tpx / 4);
  const C = range(b.tco);
  return kernel(`conv2d_${b.tco}x${b.tpx}_wg${b.wg}`, () => ({
    ...CONV_BINDINGS,
    wgsl: `
struct U {
  chBlocks: u32, stride: u32, rowBlocks: u32, blocks: u32,
  qH: u32, batch: u32, outH: u32, outW: u32,
  inH: i32, inW: i32, inHW: u32, redC: u32,
  outCg: u32, outC: u32, inC: u32, kh: u32,
  kw: u32, kyStep: u32, kxStep: u32, hasBias: u32,
  sAy: i32, sAx: i32, dAy: i32, dAx: i32,
  pAy: i32, pAx: i32, sBy: i32, sBx: i32,
  quads: u32, qStride: u32, pad0: u32, pad1: u32,
}
${CONV_BUFFERS}
// Output channel oc of group g at the 4 pixels ox, ox + sBx, ... of the row at ob, plus bias.
fn store4(acc: vec4<f32>, g: u32, oc: u32, ob: u32, ox: u32) {
  if (oc >= u.outCg) { return; }
  let bias = select(0.0, b_in[g * u.outCg + oc], u.hasBias != 0u);
  let at = ob + oc * u.outH * u.outW;
  for (var l = 0u; l < 4u; l++) {
    let x = ox + l * u32(u.sBx);
    if (x < u.outW) { y_out[at + x] = acc[l] + bias; }
  }
}
// First tap t in [0, step) with (base + t·d) divisible by s, or none (returns end).
fn firstTap(base: i32, d: i32, s: i32, step: u32, end: u32) -> u32 {
  for (var t = 0u; t < step; t++) {
    if ((base + i32(t) * d) % s == 0) { return t; }
  }
  return end;
}
@compute @workgroup_size(${b.wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  // Channel block from the workgroup id: weight addresses are uniform across the workgroup.
  let g = wid.y / u.chBlocks;
  let oc0 = (wid.y % u.chBlocks) * ${b.tco}u;
  let real = gid.x + gid.z * u.stride;
  // A block is TPX pixels of one output row, sBx apart (one phase of the output grid), so every
  // pixel of the block uses the same taps. Blocks past the end repeat the last one, pixels
  // past the row and channels past the group's last are computed too: none is stored.
  let blk = min(real, u.blocks - 1u);
  let qx0 = (blk % u.rowBlocks) * ${b.tpx}u;
  var rest = blk / u.rowBlocks;
  let qy = rest % u.qH;
  rest = rest / u.qH;
  let n = rest % u.batch;
  let phase = rest / u.batch;
  let oy = qy * u32(u.sBy) + phase / u32(u.sBx);
  let ox0 = qx0 * u32(u.sBx) + phase % u32(u.sBx);
  let tyBase = i32(oy) * u.sAy - u.pAy;
${PV.map((v) => `  let txBase${v} = vec4<i32>(vec4<u32>(ox0) + u32(u.sBx) * ${quad(v)}) * u.sAx - u.pAx;`).join('\n')}
  let kyStart = firstTap(tyBase, u.dAy, u.sBy, u.kyStep, u.kh);
  let kxStart = firstTap(txBase0.x, u.dAx, u.sBx, u.kxStep, u.kw);
  let xn = (n * u.inC + g * u.redC) * u.inHW;
  let wb = (g * u.quads + oc0 / 4u) * u.qStride;
${C.flatMap((c) => PV.map((v) => `  var acc${c}_${v} = vec4<f32>(0.0);`)).join('\n')}
  for (var ky = kyStart; ky < u.kh; ky += u.kyStep) {
    let ty = tyBase + i32(ky) * u.dAy;
    let iy = ty / u.sBy;
    if (ty < 0 || iy >= u.inH) { continue; }
    let xr = xn + u32(iy * u.inW);
    for (var kx = kxStart; kx < u.kw; kx += u.kxStep) {
${PV.map(
  (v) => `      let tx${v} = txBase${v} + i32(kx) * u.dAx;
      let ix${v} = tx${v} / u.sBx;
      let ok${v} = (tx${v} >= vec4<i32>(0)) & (ix${v} < vec4<i32>(u.inW));
      var xo${v} = vec4<u32>(xr) + vec4<u32>(select(vec4<i32>(0), ix${v}, ok${v}));`,
).join('\n')}
      var wo = wb + ky * u.kw + kx;
      for (var ic = 0u; ic < u.redC; ic++) {
${PV.map(
  (v) =>
    `        let xv${v} = select(vec4<f32>(0.0), vec4<f32>(x_in[xo${v}.x], x_in[xo${v}.y], x_in[xo${v}.z], x_in[xo${v}.w]), ok${v});`,
).join('\n')}
${range(b.tco / 4).map((q) => `        let w${q} = w_in[wo${q ? ` + ${q}u * u.qStride` : ''}];`).join('\n')}
${C.map((c) => PV.map((v) => `        acc${c}_${v} += w${Math.floor(c / 4)}.${LANES[c % 4]} * xv${v};`).join('\n')).join('\n')}
${PV.map((v) => `        xo${v} += vec4<u32>(u.inHW);`).join('\n')}
        wo += u.kh * u.kw;
      }
    }
  }
  if (real >= u.blocks || oy >= u.outH) { return; }
  let ob = ((n * u.outC + g * u.outCg) * u.outH + oy) * u.outW;
  ${storeBlock(
    'vec4<f32>',
    C.flatMap((c) => PV.map((v) => `acc${c}_${v}`)),
    (acc, i) => `store4(${acc}, g, oc0 + ${i} / ${PV.length}u, ob, ox0 + 4u * (${i} % ${PV.length}u) * u32(u.sBx))`,
  )}
}`,
  }));
}

/**
 * The conv of `convKernel` when taps and output pixels are 1 apart along x: the forward conv
 * with stride 1 and dilation 1 along x, and the input gradient of a stride-1 conv with dilation 1
 * along x, which is a forward conv with flipped taps (flipped when the weights are packed) and
 * padding (k − 1)·d − p. Each invocation covers TPX consecutive pixels of one output row, so the
 * TPX + kw − 1 inputs of a row segment are loaded once per channel and reused by every tap:
 * 10 loads instead of 24 for 3x3 with TPX = 8. Along y, iy = oy·sAy + ky·dAy − pAy.
 */
export function convRowKernel(b: ConvRowBlocking): Kernel {
  checkBlock('convRowKernel', { tco: b.tco });
  const KW = b.kw;
  const T = range(b.tpx + KW - 1);
  const J = range(b.tpx);
  const CV = range(b.tco / 4);
  const C = range(b.tco);
  return kernel(`conv2d_row_k${KW}_${b.tco}x${b.tpx}_wg${b.wg}`, () => ({
    ...CONV_BINDINGS,
    wgsl: `
struct U {
  chBlocks: u32, stride: u32, rowBlocks: u32, blocks: u32,
  outH: u32, outW: u32, inH: i32, inW: i32,
  inHW: u32, redC: u32, outCg: u32, outC: u32,
  inC: u32, kh: u32, sAy: i32, dAy: i32,
  pAy: i32, pAx: i32, quads: u32, qStride: u32,
  hasBias: u32, pad0: u32, pad1: u32, pad2: u32,
}
${CONV_BUFFERS}
// Output channel oc of group g at pixel ox of the row at ob, plus bias.
fn store1(acc: f32, g: u32, oc: u32, ob: u32, ox: u32) {
  if (oc >= u.outCg || ox >= u.outW) { return; }
  let bias = select(0.0, b_in[g * u.outCg + oc], u.hasBias != 0u);
  y_out[ob + oc * u.outH * u.outW + ox] = acc + bias;
}
@compute @workgroup_size(${b.wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  // Channel block from the workgroup id: weight addresses are uniform across the workgroup.
  let g = wid.y / u.chBlocks;
  let oc0 = (wid.y % u.chBlocks) * ${b.tco}u;
  let real = gid.x + gid.z * u.stride;
  // Blocks past the end repeat the last one, pixels past the row end and channels past the
  // group's last are computed like the others: none of them is stored.
  let blk = min(real, u.blocks - 1u);
  let ox0 = (blk % u.rowBlocks) * ${b.tpx}u;
  let row = blk / u.rowBlocks;
  let oy = row % u.outH;
  let n = row / u.outH;
${T.map(
  (t) => `  let ix${t} = i32(ox0) + ${t} - u.pAx;
  let okx${t} = (ix${t} >= 0) & (ix${t} < u.inW);
  let cx${t} = u32(select(0, ix${t}, okx${t}));`,
).join('\n')}
  let xn = (n * u.inC + g * u.redC) * u.inHW;
  let wb = (g * u.quads + oc0 / 4u) * u.qStride;
${C.flatMap((c) => J.map((j) => `  var acc${c}_${j} = 0.0;`)).join('\n')}
  for (var ky = 0u; ky < u.kh; ky++) {
    let iy = i32(oy) * u.sAy + i32(ky) * u.dAy - u.pAy;
    if (iy < 0 || iy >= u.inH) { continue; }
    var xo = xn + u32(iy) * u32(u.inW);
    var wo = wb + ky * ${KW}u;
    for (var ic = 0u; ic < u.redC; ic++) {
${T.map((t) => `      let v${t} = select(0.0, x_in[xo + cx${t}], okx${t});`).join('\n')}
${range(KW)
  .flatMap((k) =>
    CV.map((q) => {
      const load = `      let w${q}_${k} = w_in[wo${q ? ` + ${q}u * u.qStride` : ''} + ${k}u];\n`;
      return load + range(4).flatMap((l) => J.map((j) => `      acc${4 * q + l}_${j} += w${q}_${k}.${LANES[l]} * v${j + k};`)).join('\n');
    }),
  )
  .join('\n')}
      xo += u.inHW;
      wo += u.kh * ${KW}u;
    }
  }
  if (real >= u.blocks) { return; }
  let ob = ((n * u.outC + g * u.outCg) * u.outH + oy) * u.outW;
  ${storeBlock(
    'f32',
    C.flatMap((c) => J.map((j) => `acc${c}_${j}`)),
    (acc, i) => `store1(${acc}, g, oc0 + ${i} / ${b.tpx}u, ob, ox0 + ${i} % ${b.tpx}u)`,
  )}
}`,
  }));
}

/**
 * The weight gradient of any conv: each invocation owns a TCO x TCI channel block at one tap and
 * a batch chunk; the output pixels whose tap lands inside the input are worked out in advance,
 * so the inner loop has no bounds checks.
 */
export function convWeightGradKernel(b: ConvWeightGradBlocking): Kernel {
  checkBlock('convWeightGradKernel', { tco: b.tco, tci: b.tci });
  const CV = range(b.tco / 4);
  const IV = range(b.tci / 4);
  const C = range(b.tco);
  return kernel(`conv2d_wgrad_${b.tco}x${b.tci}_wg${b.wg}`, () => ({
    ...WGRAD_BINDINGS,
    wgsl: `
struct U {
  items: u32, stride: u32, outCg: u32, inCg: u32,
  kw: u32, kk: u32, nPerSplit: u32, batch: u32,
  inC: u32, outC: u32, inH: i32, inW: i32,
  inHW: u32, outH: i32, outW: i32, outHW: u32,
  sy: i32, sx: i32, dilY: i32, dilX: i32,
  py: i32, px: i32, coBlocks: u32, ciBlocks: u32,
  groups: u32, wSize: u32, pad0: u32, pad1: u32,
}
${wgradBuffers('f32')}
// dw of output channel oc (in its group) for the input channels ic .. ic + 3 at the tap of base.
fn store4(acc: vec4<f32>, base: u32, oc: u32, ic: u32) {
  if (oc >= u.outCg) { return; }
  let o = base + oc * u.inCg * u.kk;
  for (var l = 0u; l < 4u; l++) {
    if (ic + l < u.inCg) { dw_out[o + (ic + l) * u.kk] = acc[l]; }
  }
}
// First o >= 0 with o·s + off >= 0.
fn firstInside(off: i32, s: i32) -> i32 { return select(0, (s - 1 - off) / s, off < 0); }
// One past the last o with o·s + off <= len - 1 (0 when there is none), at most outLen.
fn endInside(off: i32, s: i32, len: i32, outLen: i32) -> i32 {
  let t = len - 1 - off;
  return select(min(outLen, t / s + 1), 0, t < 0);
}
@compute @workgroup_size(${b.wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let item = gid.x + gid.y * u.stride;
  if (item >= u.items) { return; }
  let tap = item % u.kk;
  var rest = item / u.kk;
  let ic0 = (rest % u.ciBlocks) * ${b.tci}u;
  rest = rest / u.ciBlocks;
  let oc0 = (rest % u.coBlocks) * ${b.tco}u;
  rest = rest / u.coBlocks;
  let g = rest % u.groups;
  let split = rest / u.groups;
  let offY = i32(tap / u.kw) * u.dilY - u.py;
  let offX = i32(tap % u.kw) * u.dilX - u.px;
  let oyLo = firstInside(offY, u.sy);
  let oyHi = endInside(offY, u.sy, u.inH, u.outH);
  let oxLo = firstInside(offX, u.sx);
  let oxHi = endInside(offX, u.sx, u.inW, u.outW);
  // Channels past the group's last repeat it: computed, never stored.
${CV.map((c) => `  let dc${c} = (g * u.outCg + min(${v4('oc0', c)}, vec4<u32>(u.outCg - 1u))) * u.outHW;`).join('\n')}
${IV.map((i) => `  let xc${i} = (g * u.inCg + min(${v4('ic0', i)}, vec4<u32>(u.inCg - 1u))) * u.inHW;`).join('\n')}
${C.flatMap((c) => IV.map((i) => `  var acc${c}_${i} = vec4<f32>(0.0);`)).join('\n')}
  let nEnd = min(u.batch, (split + 1u) * u.nPerSplit);
  for (var n = split * u.nPerSplit; n < nEnd; n++) {
    for (var oy = oyLo; oy < oyHi; oy++) {
      var di = n * u.outC * u.outHW + u32(oy * u.outW + oxLo);
      var xi = n * u.inC * u.inHW + u32((oy * u.sy + offY) * u.inW + oxLo * u.sx + offX);
      for (var ox = oxLo; ox < oxHi; ox++) {
${CV.map((c) => `        let d${c} = vec4<f32>(dy_in[di + dc${c}.x], dy_in[di + dc${c}.y], dy_in[di + dc${c}.z], dy_in[di + dc${c}.w]);`).join('\n')}
${IV.map((i) => `        let xv${i} = vec4<f32>(x_in[xi + xc${i}.x], x_in[xi + xc${i}.y], x_in[xi + xc${i}.z], x_in[xi + xc${i}.w]);`).join('\n')}
${C.flatMap((c) => IV.map((i) => `        acc${c}_${i} += d${Math.floor(c / 4)}.${LANES[c % 4]} * xv${i};`)).join('\n')}
        di += 1u;
        xi += u32(u.sx);
      }
    }
  }
  let base = split * u.wSize + (g * u.outCg) * u.inCg * u.kk + tap;
  ${storeBlock(
    'vec4<f32>',
    C.flatMap((c) => IV.map((i) => `acc${c}_${i}`)),
    (acc, i) => `store4(${acc}, base, oc0 + ${i} / ${IV.length}u, ic0 + 4u * (${i} % ${IV.length}u))`,
  )}
}`,
  }));
}

/**
 * The weight gradient of convs whose taps and output pixels are 1 apart along x. dy comes
 * channels-last (see convPackChannelsKernel), so a vec4 load gives four output channels. A
 * workgroup owns a block of TCO output channels (of the forward conv) and a batch chunk, so every
 * dy load is uniform across it; each invocation owns TCI input channels at one tap row ky and
 * slides a window of kw inputs along the output row, so one new input per channel feeds all kw taps.
 */
export function convWeightGradRowKernel(b: ConvWeightGradRowBlocking): Kernel {
  checkBlock('convWeightGradRowKernel', { tco: b.tco });
  const KW = b.kw;
  const CV = range(b.tco / 4);
  const K = range(KW);
  const I = range(b.tci);
  const C = range(b.tco);
  return kernel(`conv2d_wgrad_row_k${KW}_${b.tco}x${b.tci}_wg${b.wg}`, () => ({
    ...WGRAD_BINDINGS,
    wgsl: `
struct U {
  lanes: u32, coBlocks: u32, kh: u32, outCg: u32,
  inCg: u32, inC: u32, groups: u32, inH: i32,
  inW: i32, inHW: u32, outH: u32, outW: u32,
  outHW: u32, sy: i32, dilY: i32, py: i32,
  px: i32, nPerSplit: u32, batch: u32, wSize: u32,
  quads: u32, pad0: u32, pad1: u32, pad2: u32,
}
${wgradBuffers('vec4<f32>')}
// dw of output channel oc of group g and input channel ic at tap kx of the tap row at base.
fn store1(acc: f32, base: u32, g: u32, oc: u32, ic: u32, kx: u32) {
  if (oc >= u.outCg || ic >= u.inCg) { return; }
  dw_out[base + ((g * u.outCg + oc) * u.inCg + ic) * u.kh * ${KW}u + kx] = acc;
}
@compute @workgroup_size(${b.wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let g = wid.y / u.coBlocks;
  let oc0 = (wid.y % u.coBlocks) * ${b.tco}u;
  let split = wid.z;
  // Lanes past the end and channels past the group's last repeat the last one: never stored.
  let lane = min(gid.x, u.lanes - 1u);
  let ky = lane % u.kh;
  let ic0 = (lane / u.kh) * ${b.tci}u;
  let offY = i32(ky) * u.dilY - u.py;
${I.map((i) => `  let xc${i} = (g * u.inCg + min(ic0 + ${i}u, u.inCg - 1u)) * u.inHW;`).join('\n')}
${C.flatMap((c) => I.flatMap((i) => K.map((k) => `  var acc${c}_${i}_${k} = 0.0;`))).join('\n')}
  let nEnd = min(u.batch, (split + 1u) * u.nPerSplit);
  for (var n = split * u.nPerSplit; n < nEnd; n++) {
    for (var oy = 0u; oy < u.outH; oy++) {
      let iy = i32(oy) * u.sy + offY;
      if (iy < 0 || iy >= u.inH) { continue; }
      let xr = n * u.inC * u.inHW + u32(iy) * u32(u.inW);
      var di = ((n * u.groups + g) * u.outHW + oy * u.outW) * u.quads + oc0 / 4u;
      // win_i_k holds input channel i at ix = ox + k − px.
${K.slice(0, -1)
  .map((k) => `      let ix${k} = ${k} - u.px;\n      let ok${k} = ix${k} >= 0 && ix${k} < u.inW;`)
  .join('\n')}
${I.flatMap((i) => K.map((k) => (k < KW - 1 ? `      var win${i}_${k} = select(0.0, x_in[xr + xc${i} + u32(select(0, ix${k}, ok${k}))], ok${k});` : `      var win${i}_${k} = 0.0;`))).join('\n')}
      for (var ox = 0u; ox < u.outW; ox++) {
        let ix = i32(ox) + ${KW - 1} - u.px;
        let ok = ix >= 0 && ix < u.inW;
        let at = xr + u32(select(0, ix, ok));
${I.map((i) => `        win${i}_${KW - 1} = select(0.0, x_in[at + xc${i}], ok);`).join('\n')}
${CV.map((q) => `        let d${q} = dy_in[di${q ? ` + ${q}u` : ''}];`).join('\n')}
${C.flatMap((c) => I.flatMap((i) => K.map((k) => `        acc${c}_${i}_${k} += d${Math.floor(c / 4)}.${LANES[c % 4]} * win${i}_${k};`))).join('\n')}
${I.flatMap((i) => K.slice(0, -1).map((k) => `        win${i}_${k} = win${i}_${k + 1};`)).join('\n')}
        di += u.quads;
      }
    }
  }
  if (gid.x >= u.lanes) { return; }
  let base = split * u.wSize + ky * ${KW}u;
  ${storeBlock(
    'f32',
    C.flatMap((c) => I.flatMap((i) => K.map((k) => `acc${c}_${i}_${k}`))),
    (acc, i) => `store1(${acc}, base, g, oc0 + ${i} / ${b.tci * KW}u, ic0 + (${i} / ${KW}u) % ${b.tci}u, ${i} % ${KW}u)`,
  )}
}`,
  }));
}

/**
 * Repacks conv weights for convKernel and convRowKernel: wp[g][q][ic][ky][kx] is a vec4 of the
 * output channels 4q .. 4q + 3 of group g (zero past the last), read from
 * w[g·wG + oc·wO + ic·wI + tap] with the taps flipped when `flip` is set. One vec4 load then
 * serves four output channels; the weights are small, so the extra pass is cheap.
 */
export function convPackWeightsKernel(): Kernel {
  return kernel('conv2d_pack_weights', () => ({
    inputs: ['w_in'],
    outputs: ['wp_out'],
    uniform: 'u',
    wgsl: `
struct U { n: u32, stride: u32, kh: u32, kw: u32, redC: u32, outCg: u32, quads: u32, wG: u32, wO: u32, wI: u32, flip: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> w_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> wp_out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.stride;
  if (i >= u.n) { return; }
  var r = i / 4u;
  let kx = r % u.kw;
  r = r / u.kw;
  let ky = r % u.kh;
  r = r / u.kh;
  let ic = r % u.redC;
  r = r / u.redC;
  let oc = (r % u.quads) * 4u + i % 4u;
  let g = r / u.quads;
  let tap = select(ky * u.kw + kx, (u.kh - 1u - ky) * u.kw + u.kw - 1u - kx, u.flip != 0u);
  wp_out[i] = select(0.0, w_in[g * u.wG + min(oc, u.outCg - 1u) * u.wO + ic * u.wI + tap], oc < u.outCg);
}`,
  }));
}

/**
 * Channels-last copy of an [N, groups·cg, hw] tensor: out[((n·groups + g)·hw + p)·4·quads + c]
 * is channel c of group g (zero for c >= cg), so a vec4 load reads four channels of one pixel.
 */
export function convPackChannelsKernel(): Kernel {
  return kernel('conv2d_pack_channels', () => ({
    inputs: ['x_in'],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { n: u32, stride: u32, hw: u32, cg: u32, quads: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.stride;
  if (i >= u.n) { return; }
  let c = i % (4u * u.quads);
  let r = i / (4u * u.quads);
  let p = r % u.hw;
  let plane = r / u.hw;
  y_out[i] = select(0.0, x_in[(plane * u.cg + min(c, u.cg - 1u)) * u.hw + p], c < u.cg);
}`,
  }));
}
