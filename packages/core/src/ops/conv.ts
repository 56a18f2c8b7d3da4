/**
 * 2-D convolution (NCHW) with groups, stride, padding and dilation, and its backward rule; the
 * kernels are in @transfuse/kernels' conv.ts, the choice of their blocks in conv_choice.ts.
 */
import {
  blockingName,
  CONV_GENERAL_BLOCK,
  CONV_WGRAD_GENERAL_BLOCK,
  rowKernelsApply,
  convKernel,
  convRowBlockingFor,
  convRowBucket,
  convRowCandidates,
  convWeightGradRowBlockingFor,
  convWeightGradRowBucket,
  convWeightGradRowCandidates,
  weightGradBlockingName,
  convPackChannelsKernel,
  convPackWeightsKernel,
  convRowKernel,
  convWeightGradRowKernel,
  convWeightGradKernel,
  grid,
  type ConvBlocking,
  type ConvRowShape,
  type ConvWeightGradBlocking,
  type ConvWeightGradRowShape,
  type Kernel,
} from '@transfuse/kernels';
import { record } from '../autograd/tape.js';
import { runtime } from '../runtime/current.js';
import { fmt, gcd } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { tunedVariant, type TuneTrial } from '../tune.js';
import { randn } from './creation.js';
import { reshape } from './layout.js';
import { sum } from './sum.js';
import { empty, expectTensors, run1d } from './util.js';

export interface Conv2dOptions {
  /** Step between output pixels, [y, x] or one number for both (default 1). */
  stride?: number | [number, number];
  /** Zeros added on each side, [y, x] or one number (default 0). */
  padding?: number | [number, number];
  /** Spacing between kernel taps, [y, x] or one number (default 1). */
  dilation?: number | [number, number];
  /** Channel groups: input and output channels split into `groups` independent convolutions (default 1). */
  groups?: number;
}

type Pair = [number, number];

interface ConvGeometry {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  kh: number;
  kw: number;
  groups: number;
  /** Input and output channels per group. */
  cig: number;
  cog: number;
  stride: Pair;
  padding: Pair;
  dilation: Pair;
  ho: number;
  wo: number;
}

/**
 * The weight gradient reduces over batch and pixels; with fewer workgroups (row kernel) or
 * invocations (general kernel) than these, the batch is split into chunks whose partial sums are
 * added afterwards, so that every core has work.
 */
const WGRAD_MIN_WORKGROUPS = 64;
const WGRAD_MIN_INVOCATIONS = 4096;

function pair(v: number | Pair | undefined, dflt: number, name: string, min: number): Pair {
  const p: Pair = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!Array.isArray(p) || p.length !== 2 || p.some((e) => !Number.isInteger(e) || e < min)) {
    throw new Error(`conv2d: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

function geometry(x: Tensor, w: Tensor, bias: Tensor | null, opts: Conv2dOptions): ConvGeometry {
  const op = 'conv2d';
  if (x.rank !== 4) throw new Error(`${op}: input must be 4-D [N, Cin, H, W], got ${fmt(x.shape)}`);
  if (w.rank !== 4) throw new Error(`${op}: weight must be 4-D [Cout, Cin/groups, kh, kw], got ${fmt(w.shape)}`);
  const [n, cin, h, wd] = x.shape;
  const [cout, cig, kh, kw] = w.shape;
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`${op}: groups must be a positive integer, got ${groups}`);
  if (cin % groups !== 0 || cout % groups !== 0) {
    throw new Error(`${op}: groups = ${groups} must divide the input channels (${cin}) and output channels (${cout}); input ${fmt(x.shape)}, weight ${fmt(w.shape)}`);
  }
  if (cig * groups !== cin) {
    throw new Error(
      `${op}: weight ${fmt(w.shape)} expects ${cig * groups} input channels (${cig} per group x ${groups} groups) but the input ${fmt(x.shape)} has ${cin}`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== cout)) {
    throw new Error(`${op}: bias must have shape [${cout}] (one per output channel of weight ${fmt(w.shape)}), got ${fmt(bias.shape)}`);
  }
  if (kh === 0 || kw === 0 || cout === 0) throw new Error(`${op}: empty weight ${fmt(w.shape)}`);
  const stride = pair(opts.stride, 1, 'stride', 1);
  const padding = pair(opts.padding, 0, 'padding', 0);
  const dilation = pair(opts.dilation, 1, 'dilation', 1);
  const extent = (k: number, d: number) => d * (k - 1) + 1;
  const [ey, ex] = [extent(kh, dilation[0]), extent(kw, dilation[1])];
  if (ey > h + 2 * padding[0] || ex > wd + 2 * padding[1]) {
    throw new Error(
      `${op}: kernel ${kh}x${kw} (dilation ${dilation.join('x')}, spanning ${ey}x${ex}) is larger than the padded input ` +
        `${h + 2 * padding[0]}x${wd + 2 * padding[1]} (input ${fmt(x.shape)}, padding ${padding.join('x')})`,
    );
  }
  const ho = Math.floor((h + 2 * padding[0] - ey) / stride[0]) + 1;
  const wo = Math.floor((wd + 2 * padding[1] - ex) / stride[1]) + 1;
  return { n, cin, h, w: wd, cout, kh, kw, groups, cig, cog: cout / groups, stride, padding, dilation, ho, wo };
}

/** The row kernels serve this conv (see `rowKernelsApply`). */
function rowAlongX(g: ConvGeometry): boolean {
  return rowKernelsApply(g.stride[1], g.dilation[1], g.kw);
}

/** Workgroups for `invocations` pixel blocks along x (spilling into z) and `channelItems` along y. */
function convGrid(invocations: number, wg: number, channelItems: number): { workgroups: [number, number, number]; stride: number } {
  const groups = Math.max(1, Math.ceil(invocations / wg));
  const gx = Math.min(groups, runtime().limits.maxComputeWorkgroupsPerDimension);
  return { workgroups: [gx, channelItems, Math.ceil(groups / gx)], stride: gx * wg };
}

/**
 * The weights as the conv kernels read them (see convPackWeightsKernel): vec4s of output
 * channels, `quads` per group (the channel blocks of `tco` rounded up), flipped taps if asked.
 * For the input gradient the roles of the weight's two channel axes swap.
 */
function packWeights(w: Tensor, g: ConvGeometry, transposed: boolean, flip: boolean, tco: number, op: string) {
  const kk = g.kh * g.kw;
  const [redC, outCg] = transposed ? [g.cog, g.cig] : [g.cig, g.cog];
  const quads = Math.ceil(outCg / tco) * (tco / 4);
  const wp = empty([g.groups * quads * redC * kk * 4], 'float32', op);
  run1d(convPackWeightsKernel(), op, wp.size, [w], [wp], {
    n: wp.size,
    kh: g.kh,
    kw: g.kw,
    redC,
    outCg,
    quads,
    wG: g.cog * g.cig * kk,
    wO: transposed ? kk : g.cig * kk,
    wI: transposed ? g.cig * kk : kk,
    flip: flip ? 1 : 0,
    pad0: 0,
  });
  return { wp, quads, qStride: redC * kk };
}

/** The tensors of a conv (or its input gradient) of geometry `g`, on random values, for the tuner. */
function convTrial(g: ConvGeometry, transposed: boolean, run: (src: Tensor, w: Tensor, out: Tensor, variant: string) => void): () => TuneTrial {
  return () => {
    const src = randn(transposed ? [g.n, g.cout, g.ho, g.wo] : [g.n, g.cin, g.h, g.w], { seed: 1 });
    const w = randn([g.cout, g.cig, g.kh, g.kw], { seed: 2 });
    const out = empty(transposed ? [g.n, g.cin, g.h, g.w] : [g.n, g.cout, g.ho, g.wo], 'float32', 'tune conv2d');
    return { run: (v) => run(src, w, out, v), dispose: () => [src, w, out].forEach((t) => t.dispose()) };
  };
}

/** The row kernel's block for this conv: forced, measured by the tuner, or the rule's. */
function rowBlocking(g: ConvGeometry, transposed: boolean): ConvBlocking {
  const shape: ConvRowShape = transposed ? { outW: g.w, outCg: g.cig, redC: g.cog, kw: g.kw } : { outW: g.wo, outCg: g.cog, redC: g.cig, kw: g.kw };
  const family = transposed ? 'conv-input-grad' : 'conv';
  const names = convRowCandidates(shape).map(blockingName);
  const trial = convTrial(g, transposed, (src, w, out, v) => runConv(src, w, null, out, g, transposed, `tune ${family}`, convRowBlockingFor(shape, v)));
  return convRowBlockingFor(shape, tunedVariant(family, convRowBucket(shape), names, trial));
}

/**
 * The forward conv, or (transposed) the input gradient. Convs whose taps and output pixels are
 * 1 apart along x use the row kernel (with `block`, else the chosen one); the rest the general
 * one (see their comments for the mapping).
 */
function runConv(src: Tensor, w: Tensor, bias: Tensor | null, out: Tensor, g: ConvGeometry, transposed: boolean, op: string, block?: ConvBlocking): void {
  const [outC, outH, outW, inC, inH, inW] = transposed ? [g.cin, g.h, g.w, g.cout, g.ho, g.wo] : [g.cout, g.ho, g.wo, g.cin, g.h, g.w];
  const [redC, outCg] = transposed ? [g.cog, g.cig] : [g.cig, g.cog];
  // Packs the weights for blocks of `b.tco` output channels and dispatches `blocks` pixel blocks
  // of `rowBlocks` per output row; `params` are the kernel's own uniforms.
  const launch = (kern: Kernel, b: ConvBlocking, flip: boolean, rowBlocks: number, blocks: number, params: Record<string, number>) => {
    const packed = packWeights(w, g, transposed, flip, b.tco, op);
    const chBlocks = Math.ceil(outCg / b.tco);
    const { workgroups, stride } = convGrid(blocks, b.wg, chBlocks * g.groups);
    runtime().dispatch(kern, {
      op,
      params: {
        ...params,
        inH,
        inW,
        inHW: inH * inW,
        redC,
        outCg,
        outC,
        inC,
        outH,
        outW,
        kh: g.kh,
        hasBias: bias ? 1 : 0,
        chBlocks,
        stride,
        rowBlocks,
        blocks,
        quads: packed.quads,
        qStride: packed.qStride,
      },
      inputs: [src.storageFor(op), packed.wp.storageFor(op), (bias ?? packed.wp).storageFor(op)],
      outputs: [out.storageFor(op)],
      workgroups,
    });
    packed.wp.dispose();
  };
  if (rowAlongX(g) && (!transposed || g.stride[0] === 1)) {
    const b = { ...(block ?? rowBlocking(g, transposed)), kw: g.kw };
    const rowBlocks = Math.ceil(outW / b.tpx);
    // The input gradient of a stride-1 conv is a conv with flipped taps and padding (k − 1)·d − p.
    launch(convRowKernel(b), b, transposed, rowBlocks, g.n * outH * rowBlocks, {
      sAy: transposed ? 1 : g.stride[0],
      dAy: g.dilation[0],
      pAy: transposed ? (g.kh - 1) * g.dilation[0] - g.padding[0] : g.padding[0],
      pAx: transposed ? g.kw - 1 - g.padding[1] : g.padding[1],
      pad0: 0,
      pad1: 0,
      pad2: 0,
    });
    return;
  }
  // The input gradient of a strided conv is a transposed conv: output pixels of one phase
  // (oy mod stride, ox mod stride) receive from the same taps, so blocks are taken per phase.
  const [sA, dA, pA, sB] = transposed
    ? [[1, 1], g.dilation.map((d) => -d), g.padding.map((p) => -p), g.stride]
    : [g.stride, g.dilation, g.padding, [1, 1]];
  const qH = Math.ceil(outH / sB[0]);
  const rowBlocks = Math.ceil(Math.ceil(outW / sB[1]) / CONV_GENERAL_BLOCK.tpx);
  launch(convKernel(CONV_GENERAL_BLOCK), CONV_GENERAL_BLOCK, false, rowBlocks, sB[0] * sB[1] * g.n * qH * rowBlocks, {
    qH,
    batch: g.n,
    kw: g.kw,
    // Taps ky with (oy·sA + ky·dA − pA) divisible by sB recur every sB / gcd(dA, sB).
    kyStep: sB[0] / gcd(dA[0], sB[0]),
    kxStep: sB[1] / gcd(dA[1], sB[1]),
    sAy: sA[0],
    sAx: sA[1],
    dAy: dA[0],
    dAx: dA[1],
    pAy: pA[0],
    pAx: pA[1],
    sBy: sB[0],
    sBx: sB[1],
    pad0: 0,
    pad1: 0,
  });
}

/** Batch items per chunk, and chunks, so that at least `minItems` work items (of `perSplit` per chunk) run. */
function batchSplit(n: number, perSplit: number, minItems: number): { nPerSplit: number; splits: number } {
  const nPerSplit = Math.ceil(n / Math.min(n, Math.ceil(minItems / perSplit)));
  return { nPerSplit, splits: Math.ceil(n / nPerSplit) };
}

/** The row weight-gradient kernel's block for this conv: forced, measured by the tuner, or the rule's. */
function weightGradRowBlocking(g: ConvGeometry, wShape: readonly number[]): ConvWeightGradBlocking {
  const shape: ConvWeightGradRowShape = { outW: g.wo, outCg: g.cog, inCg: g.cig, kw: g.kw };
  const names = convWeightGradRowCandidates(shape).map(weightGradBlockingName);
  const trial = () => {
    const x = randn([g.n, g.cin, g.h, g.w], { seed: 1 });
    const dy = randn([g.n, g.cout, g.ho, g.wo], { seed: 2 });
    return {
      run: (v: string) => weightGrad(x, dy, g, wShape, 'tune conv-wgrad', convWeightGradRowBlockingFor(shape, v)).dispose(),
      dispose: () => [x, dy].forEach((t) => t.dispose()),
    };
  };
  return convWeightGradRowBlockingFor(shape, tunedVariant('conv-wgrad', convWeightGradRowBucket(shape), names, trial));
}

function weightGrad(x: Tensor, dy: Tensor, g: ConvGeometry, wShape: readonly number[], op: string, block?: ConvWeightGradBlocking): Tensor {
  const kk = g.kh * g.kw;
  const wSize = g.cout * g.cig * kk;
  const common = {
    outCg: g.cog,
    inCg: g.cig,
    inC: g.cin,
    inH: g.h,
    inW: g.w,
    inHW: g.h * g.w,
    outH: g.ho,
    outW: g.wo,
    outHW: g.ho * g.wo,
    sy: g.stride[0],
    dilY: g.dilation[0],
    py: g.padding[0],
    px: g.padding[1],
    batch: g.n,
    wSize,
  };
  let k: Kernel;
  let params: Record<string, number>;
  let workgroups: [number, number, number];
  let splits: number;
  // The row kernel reads dy channels-last (a temporary copy); the general one reads it as is.
  let dyIn = dy;
  if (rowAlongX(g)) {
    const b = { ...(block ?? weightGradRowBlocking(g, wShape)), kw: g.kw };
    k = convWeightGradRowKernel(b);
    const coBlocks = Math.ceil(g.cog / b.tco);
    const quads = coBlocks * (b.tco / 4);
    dyIn = empty([g.n * g.groups * g.ho * g.wo * quads * 4], 'float32', op);
    run1d(convPackChannelsKernel(), op, dyIn.size, [dy], [dyIn], { n: dyIn.size, hw: g.ho * g.wo, cg: g.cog, quads, pad0: 0, pad1: 0, pad2: 0 });
    const lanes = Math.ceil(g.cig / b.tci) * g.kh;
    const perSplit = Math.ceil(lanes / b.wg) * coBlocks * g.groups;
    const split = batchSplit(g.n, perSplit, WGRAD_MIN_WORKGROUPS);
    splits = split.splits;
    workgroups = [Math.ceil(lanes / b.wg), coBlocks * g.groups, splits];
    params = { ...common, lanes, coBlocks, kh: g.kh, nPerSplit: split.nPerSplit, groups: g.groups, quads, pad0: 0, pad1: 0, pad2: 0 };
  } else {
    k = convWeightGradKernel(CONV_WGRAD_GENERAL_BLOCK);
    const coBlocks = Math.ceil(g.cog / CONV_WGRAD_GENERAL_BLOCK.tco);
    const ciBlocks = Math.ceil(g.cig / CONV_WGRAD_GENERAL_BLOCK.tci);
    const perSplit = coBlocks * ciBlocks * kk * g.groups;
    const split = batchSplit(g.n, perSplit, WGRAD_MIN_INVOCATIONS);
    splits = split.splits;
    const items = perSplit * splits;
    const flat = grid(items, k.workgroupSize[0], runtime().limits.maxComputeWorkgroupsPerDimension);
    workgroups = [...flat.workgroups, 1];
    params = {
      ...common,
      outC: g.cout,
      items,
      stride: flat.stride,
      kw: g.kw,
      kk,
      nPerSplit: split.nPerSplit,
      dilX: g.dilation[1],
      sx: g.stride[1],
      coBlocks,
      ciBlocks,
      groups: g.groups,
      pad0: 0,
      pad1: 0,
    };
  }
  const partial = empty(splits === 1 ? wShape : [splits, ...wShape], 'float32', op);
  runtime().dispatch(k, { op, params, inputs: [x.storageFor(op), dyIn.storageFor(op)], outputs: [partial.storageFor(op)], workgroups });
  if (dyIn !== dy) dyIn.dispose();
  if (splits === 1) return partial;
  const dw = sum(partial, 0);
  partial.dispose();
  return dw;
}

/**
 * 2-D convolution: x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw], optional bias [Cout] →
 * [N, Cout, Ho, Wo] with Ho = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1 (likewise Wo).
 */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const b = bias ?? null;
  expectTensors(op, 'float32', x, w, ...(b ? [b] : []));
  const g = geometry(x, w, b, opts);
  const y = empty([g.n, g.cout, g.ho, g.wo], 'float32', op);
  if (y.size === 0) return y;
  runConv(x, w, b, y, g, false, op);
  // Save only what the gradients read: dx needs w, dw needs x.
  const saveX = w.requiresGrad;
  const saveW = x.requiresGrad;
  const save = [...(saveX ? [x] : []), ...(saveW ? [w] : [])];
  return record(op, b ? [x, w, b] : [x, w], y, (dy, saved, needs) => {
    const bop = 'conv2d (backward)';
    const sx = saveX ? saved[0] : null;
    const sw = saveW ? saved[saveX ? 1 : 0] : null;
    let dx: Tensor | null = null;
    if (needs[0] && sw) {
      dx = empty(x.shape, 'float32', bop);
      if (dx.size > 0) runConv(dy, sw, null, dx, g, true, bop);
    }
    const dw = needs[1] && sx ? weightGrad(sx, dy, g, w.shape, bop) : null;
    const db = needs[2] ? sum(sum(reshape(dy, [g.n, g.cout, g.ho * g.wo]), 2), 0) : null;
    return [dx, dw, db];
  }, save);
}
