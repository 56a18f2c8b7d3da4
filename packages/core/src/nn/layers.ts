/** Layers with PyTorch's parameter names, shapes and default initialisation. */
import { tidy } from '../scope.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import {
  avgPool2d,
  conv2d,
  flatten,
  gelu,
  ge,
  indexSelect,
  linear,
  mul,
  rand,
  relu,
  reshape,
  silu,
  tanh,
  upsampleNearest2d,
  type Conv2dOptions,
} from '../ops/index.js';
import { deriveSeed, fanIn, kaimingUniform, normal, streamSeed, uniformFanIn } from './init.js';
import { Layer, parameter } from './module.js';

function positiveInt(layer: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${layer}: ${name} must be a positive integer, got ${v}`);
}

type Pair = [number, number];
const pair = (v: number | Pair): Pair => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

export interface LinearOptions {
  /** Add a learnable bias (default true). */
  bias?: boolean;
  /** Initialise from this seed instead of the global generator. */
  seed?: number;
}

/** y = x · weightᵀ + bias with weight [out, in] (torch.nn.Linear). */
export class Linear extends Layer {
  weight: Tensor;
  bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    positiveInt('Linear', 'inFeatures', inFeatures);
    positiveInt('Linear', 'outFeatures', outFeatures);
    this.weight = parameter(kaimingUniform([outFeatures, inFeatures], streamSeed(opts.seed, 0)));
    this.bias = opts.bias === false ? null : parameter(uniformFanIn([outFeatures], inFeatures, streamSeed(opts.seed, 1)));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export interface Conv2dLayerOptions extends Conv2dOptions {
  bias?: boolean;
  seed?: number;
}

/** torch.nn.Conv2d (zero padding): weight [out, in / groups, kh, kw], bias [out]. */
export class Conv2d extends Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly options: Conv2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | Pair,
    opts: Conv2dLayerOptions = {},
  ) {
    super();
    positiveInt('Conv2d', 'inChannels', inChannels);
    positiveInt('Conv2d', 'outChannels', outChannels);
    const [kh, kw] = pair(kernelSize);
    positiveInt('Conv2d', 'kernel height', kh);
    positiveInt('Conv2d', 'kernel width', kw);
    const groups = opts.groups ?? 1;
    positiveInt('Conv2d', 'groups', groups);
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`Conv2d: inChannels ${inChannels} and outChannels ${outChannels} must both be divisible by groups ${groups}`);
    }
    const shape = [outChannels, inChannels / groups, kh, kw];
    this.weight = parameter(kaimingUniform(shape, streamSeed(opts.seed, 0)));
    this.bias = opts.bias === false ? null : parameter(uniformFanIn([outChannels], fanIn(shape), streamSeed(opts.seed, 1)));
    this.options = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation, groups };
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options);
  }
}

/**
 * diffusers' Upsample2D: nearest-neighbour ×2, then (with `useConv`, default) a 3x3 conv named
 * `conv` from `channels` to `outChannels` (default `channels`).
 */
export class Upsample2d extends Layer {
  conv: Conv2d | null;

  constructor(
    readonly channels: number,
    opts: { useConv?: boolean; outChannels?: number; seed?: number } = {},
  ) {
    super();
    this.conv = opts.useConv === false ? null : new Conv2d(channels, opts.outChannels ?? channels, 3, { padding: 1, seed: opts.seed });
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.channels) {
      throw new Error(`Upsample2d: expected input [N, ${this.channels}, H, W], got ${fmt(x.shape)}`);
    }
    if (!this.conv) return upsampleNearest2d(x, 2);
    const conv = this.conv;
    return tidy(() => conv.forward(upsampleNearest2d(x, 2)));
  }
}

/**
 * diffusers' Downsample2D: with `useConv` (default) a 3x3 stride-2 conv with padding 1 named
 * `conv`; otherwise 2x2 average pooling (no parameters).
 */
export class Downsample2d extends Layer {
  conv: Conv2d | null;

  constructor(
    readonly channels: number,
    opts: { useConv?: boolean; outChannels?: number; padding?: number; seed?: number } = {},
  ) {
    super();
    if (opts.useConv === false && opts.outChannels !== undefined && opts.outChannels !== channels) {
      throw new Error(`Downsample2d: without a conv the channel count cannot change (${channels} → ${opts.outChannels})`);
    }
    this.conv =
      opts.useConv === false
        ? null
        : new Conv2d(channels, opts.outChannels ?? channels, 3, { stride: 2, padding: opts.padding ?? 1, seed: opts.seed });
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.channels) {
      throw new Error(`Downsample2d: expected input [N, ${this.channels}, H, W], got ${fmt(x.shape)}`);
    }
    return this.conv ? this.conv.forward(x) : avgPool2d(x, 2, 2);
  }
}

/** Average pooling over kernel x kernel windows (torch.nn.AvgPool2d without padding). */
export class AvgPool2d extends Layer {
  constructor(
    readonly kernelSize: number,
    readonly stride: number = kernelSize,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.stride);
  }
}

/** Rows of a [numEmbeddings, dim] table picked by an int32 index tensor of any shape → [...index.shape, dim]. */
export class Embedding extends Layer {
  weight: Tensor;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: { seed?: number } = {},
  ) {
    super();
    positiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    positiveInt('Embedding', 'embeddingDim', embeddingDim);
    this.weight = parameter(normal([numEmbeddings, embeddingDim], streamSeed(opts.seed, 0)));
  }

  /** Indices must lie in [0, numEmbeddings); they are not checked (that would need a readback). */
  forward(index: Tensor): Tensor {
    if (index.dtype !== 'int32') throw new Error(`Embedding: indices must be int32, got ${index.dtype} of shape ${fmt(index.shape)}`);
    const weight = this.weight;
    return tidy(() => reshape(indexSelect(weight, 0, reshape(index, [index.size])), [...index.shape, this.embeddingDim]));
  }
}

/**
 * Zeroes each element with probability p and scales the rest by 1 / (1 - p) while training; the
 * identity (the input itself) in eval mode. Masks come from the global generator, or from
 * `seed` with one derived stream per call.
 */
export class Dropout extends Layer {
  private calls = 0;

  constructor(
    readonly p = 0.5,
    private readonly opts: { seed?: number } = {},
  ) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout: p must be in [0, 1], got ${p}`);
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    if (this.p === 1) return mul(x, 0);
    const seed = this.opts.seed === undefined ? undefined : deriveSeed(this.opts.seed, this.calls++);
    return tidy(() => mul(x, mul(ge(rand(x.shape, { seed }), this.p), 1 / (1 - this.p))));
  }
}

export class ReLU extends Layer {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class SiLU extends Layer {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** GELU, exact (erf) form as torch.nn.GELU's default. */
export class GELU extends Layer {
  forward(x: Tensor): Tensor {
    return gelu(x);
  }
}

export class Tanh extends Layer {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Identity extends Layer {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Flattens axes startAxis..endAxis into one (torch.nn.Flatten: from axis 1 by default). */
export class Flatten extends Layer {
  constructor(
    readonly startAxis = 1,
    readonly endAxis = -1,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return flatten(x, this.startAxis, this.endAxis);
  }
}
