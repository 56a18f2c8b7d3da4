/**
 * Invertible transforms for normalizing flows, in nflows' convention: `forward` maps data towards
 * the base distribution and returns log|det ∂y/∂x| per row; `inverse` maps back and returns the
 * log-determinant of the inverse map (the negative of forward's at the matching point).
 *
 * Every transform takes an optional context `ctx` [B, c]: the already-embedded condition (see
 * flow.ts), which only coupling conditioners read.
 */
import {
  abs,
  add,
  assign,
  concat,
  exp,
  indexSelect,
  keep,
  Linear,
  linear,
  log,
  mean,
  Module,
  ModuleList,
  mul,
  neg,
  noGrad,
  parameter,
  ReLU,
  rsub,
  Sequential,
  sigmoid,
  slice,
  sqrt,
  square,
  sub,
  sum,
  tanh,
  tensor,
  tidy,
  zeros,
  zerosLike,
  affine,
  deriveSeed,
  type Tensor,
} from '@transfuse/core';
import { permutation } from '../data/prng.js';

export interface ForwardResult {
  y: Tensor;
  /** log|det J| per row, [B]. */
  logAbsDet: Tensor;
}

export interface InverseResult {
  x: Tensor;
  /** log|det J| of the inverse map per row, [B]. */
  logAbsDet: Tensor;
}

export abstract class Transform extends Module {
  abstract forward(x: Tensor, ctx?: Tensor): ForwardResult;
  abstract inverse(y: Tensor, ctx?: Tensor): InverseResult;
}

function checkInput(name: string, x: Tensor, dim: number): void {
  if (x.rank !== 2 || x.shape[1] !== dim) throw new Error(`${name}: expected input [B, ${dim}], got [${x.shape.join(', ')}]`);
}

/** Applies transforms in order (forward) and in reverse order (inverse), summing log-dets. */
export class FlowSequence extends Transform {
  layers: ModuleList<Transform>;

  constructor(transforms: readonly Transform[]) {
    super();
    this.layers = new ModuleList(transforms);
  }

  forward(x: Tensor, ctx?: Tensor): ForwardResult {
    return tidy(() => {
      let h = x;
      let total = zeros([x.shape[0]]);
      for (const t of this.layers) {
        const r = t.forward(h, ctx);
        h = r.y;
        total = add(total, r.logAbsDet);
      }
      return { y: h, logAbsDet: total };
    });
  }

  inverse(y: Tensor, ctx?: Tensor): InverseResult {
    return tidy(() => {
      let h = y;
      let total = zeros([y.shape[0]]);
      for (const t of [...this.layers].reverse()) {
        const r = t.inverse(h, ctx);
        h = r.x;
        total = add(total, r.logAbsDet);
      }
      return { x: h, logAbsDet: total };
    });
  }
}

/**
 * The conditioner network of a coupling:
 * Linear → ReLU → ... → Linear with PyTorch's Sequential names (net.0, net.2, ...); each
 * Linear+ReLU pair runs as one fused matmul.
 */
export class CouplingMlp extends Sequential {
  constructor(sizes: readonly number[], seed?: number) {
    if (sizes.length < 2) throw new Error(`CouplingMlp: needs at least input and output sizes, got [${sizes.join(', ')}]`);
    const layers = [];
    for (let i = 0; i + 1 < sizes.length; i++) {
      layers.push(new Linear(sizes[i], sizes[i + 1], { seed: seed === undefined ? undefined : deriveSeed(seed, i) }));
      if (i + 2 < sizes.length) layers.push(new ReLU());
    }
    super(...layers);
  }

  /** Zeroes the last Linear, so the MLP outputs 0 (a new coupling is the identity). */
  zeroLast(): void {
    const last = this.at(this.length - 1) as Linear;
    noGrad(() => {
      assign(last.weight, zerosLike(last.weight));
      if (last.bias) assign(last.bias, zerosLike(last.bias));
    });
  }

  override forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = x;
      for (let i = 0; i < this.length; i++) {
        const l = this.at(i) as Linear;
        const fuse = i + 1 < this.length && this.at(i + 1) instanceof ReLU;
        h = linear(h, l.weight, l.bias, fuse ? 'relu' : 'none');
        if (fuse) i++;
      }
      return h;
    });
  }
}

/** Which features a coupling passes through unchanged (`keep`) and which it transforms. */
export type Mask =
  | { kind: 'half'; parity: 0 | 1 }
  | { kind: 'checkerboard'; height: number; width: number; parity: 0 | 1 }
  /** Channel-wise for [C, H, W] images flattened: keep the first or second half of the channels. */
  | { kind: 'channel'; channels: number; height: number; width: number; parity: 0 | 1 };

/** Index lists of the kept and transformed features of a mask (each sorted). */
export function maskIndices(mask: Mask, dim: number): { keep: number[]; change: number[] } {
  const keepIdx: number[] = [];
  const change: number[] = [];
  const half = Math.floor(dim / 2);
  for (let i = 0; i < dim; i++) {
    let first: boolean;
    if (mask.kind === 'half') first = i < half;
    else if (mask.kind === 'checkerboard') first = (Math.floor(i / mask.width) + (i % mask.width)) % 2 === 0;
    else first = Math.floor(i / (mask.height * mask.width)) < Math.floor(mask.channels / 2);
    ((first ? 0 : 1) === mask.parity ? keepIdx : change).push(i);
  }
  if (mask.kind !== 'half' && (mask.kind === 'checkerboard' ? mask.height * mask.width : mask.channels * mask.height * mask.width) !== dim) {
    throw new Error(`coupling mask: a ${mask.kind} mask of ${JSON.stringify(mask)} does not cover dim ${dim}`);
  }
  if (keepIdx.length === 0 || change.length === 0) throw new Error(`coupling mask: dim ${dim} is too small to split (${mask.kind})`);
  return { keep: keepIdx, change };
}

const contiguous = (idx: number[]) => idx.every((v, i) => v === idx[0] + i);

/**
 * Shared machinery of coupling layers: splitting into kept and transformed features (slices for
 * contiguous halves, gathers otherwise), and merging back in the original order.
 */
abstract class Coupling extends Transform {
  readonly keepIdx: number[];
  readonly changeIdx: number[];
  private readonly gather: { keep: Tensor; change: Tensor; merge: Tensor } | null;
  net: CouplingMlp;

  constructor(
    readonly dim: number,
    mask: Mask,
    readonly contextDim: number,
    hidden: readonly number[],
    outPerFeature: number,
    seed?: number,
  ) {
    super();
    const { keep: k, change } = maskIndices(mask, dim);
    this.keepIdx = k;
    this.changeIdx = change;
    const sliceable = contiguous(k) && contiguous(change);
    if (sliceable) {
      this.gather = null;
    } else {
      const order = [...k, ...change];
      const merge = new Int32Array(dim);
      order.forEach((src, pos) => (merge[src] = pos));
      this.gather = { keep: keep(tensor(Int32Array.from(k))), change: keep(tensor(Int32Array.from(change))), merge: keep(tensor(merge)) };
    }
    this.net = new CouplingMlp([k.length + contextDim, ...hidden, outPerFeature * change.length], seed);
    this.net.zeroLast();
  }

  protected split(x: Tensor): [Tensor, Tensor] {
    checkInput(this.constructor.name, x, this.dim);
    if (this.gather) return [indexSelect(x, 1, this.gather.keep), indexSelect(x, 1, this.gather.change)];
    const part = (idx: number[]) => slice(x, [0, idx[0]], [undefined, idx[0] + idx.length]);
    return [part(this.keepIdx), part(this.changeIdx)];
  }

  protected merge(a: Tensor, b: Tensor): Tensor {
    if (this.gather) return indexSelect(concat([a, b], 1), 1, this.gather.merge);
    return this.keepIdx[0] === 0 ? concat([a, b], 1) : concat([b, a], 1);
  }

  protected conditioner(a: Tensor, ctx?: Tensor): Tensor {
    if (this.contextDim > 0) {
      if (!ctx || ctx.rank !== 2 || ctx.shape[1] !== this.contextDim || ctx.shape[0] !== a.shape[0]) {
        throw new Error(`${this.constructor.name}: expected a context [${a.shape[0]}, ${this.contextDim}], got ${ctx ? `[${ctx.shape.join(', ')}]` : 'none'}`);
      }
      return this.net.forward(concat([a, ctx], 1));
    }
    return this.net.forward(a);
  }

  /** Frees the index tensors (Flow.dispose calls this; parameters go with Module.dispose). */
  disposeBuffers(): void {
    if (this.gather) for (const t of Object.values(this.gather)) t.dispose();
  }
}

/** NICE's additive coupling: b' = b + m(a, ctx); volume preserving (log-det 0). */
export class AdditiveCoupling extends Coupling {
  constructor(dim: number, mask: Mask, opts: { hidden: readonly number[]; contextDim?: number; seed?: number }) {
    super(dim, mask, opts.contextDim ?? 0, opts.hidden, 1, opts.seed);
  }

  forward(x: Tensor, ctx?: Tensor): ForwardResult {
    return tidy(() => {
      const [a, b] = this.split(x);
      return { y: this.merge(a, add(b, this.conditioner(a, ctx))), logAbsDet: zeros([x.shape[0]]) };
    });
  }

  inverse(y: Tensor, ctx?: Tensor): InverseResult {
    return tidy(() => {
      const [a, b] = this.split(y);
      return { x: this.merge(a, sub(b, this.conditioner(a, ctx))), logAbsDet: zeros([y.shape[0]]) };
    });
  }
}

/**
 * RealNVP's affine coupling: b' = b·exp(s) + t with [s_raw, t] = net(a, ctx) and the scale bounded
 * as s = c·tanh(s_raw / c) (c = 1 is the baseline's plain tanh); log-det Σ s.
 */
export class AffineCoupling extends Coupling {
  readonly scaleBound: number;

  constructor(dim: number, mask: Mask, opts: { hidden: readonly number[]; contextDim?: number; scaleBound?: number; seed?: number }) {
    super(dim, mask, opts.contextDim ?? 0, opts.hidden, 2, opts.seed);
    this.scaleBound = opts.scaleBound ?? 1;
    if (!(this.scaleBound > 0)) throw new Error(`AffineCoupling: scaleBound must be > 0, got ${this.scaleBound}`);
  }

  private scaleShift(a: Tensor, ctx?: Tensor): [Tensor, Tensor] {
    const h = this.conditioner(a, ctx);
    const n = this.changeIdx.length;
    const raw = slice(h, [0, 0], [undefined, n]);
    const c = this.scaleBound;
    const s = c === 1 ? tanh(raw) : mul(tanh(mul(raw, 1 / c)), c);
    return [s, slice(h, [0, n])];
  }

  forward(x: Tensor, ctx?: Tensor): ForwardResult {
    return tidy(() => {
      const [a, b] = this.split(x);
      const [s, t] = this.scaleShift(a, ctx);
      return { y: this.merge(a, add(mul(b, exp(s)), t)), logAbsDet: sum(s, 1) };
    });
  }

  inverse(y: Tensor, ctx?: Tensor): InverseResult {
    return tidy(() => {
      const [a, b] = this.split(y);
      const [s, t] = this.scaleShift(a, ctx);
      return { x: this.merge(a, mul(sub(b, t), exp(neg(s)))), logAbsDet: neg(sum(s, 1)) };
    });
  }
}

/** NICE's final learned diagonal scaling y = x·exp(log_scale); log-det Σ log_scale. */
export class DiagonalScaling extends Transform {
  log_scale: Tensor;

  constructor(readonly dim: number) {
    super();
    this.log_scale = parameter(zeros([dim]));
  }

  forward(x: Tensor): ForwardResult {
    checkInput('DiagonalScaling', x, this.dim);
    return tidy(() => ({ y: mul(x, exp(this.log_scale)), logAbsDet: add(zeros([x.shape[0]]), sum(this.log_scale)) }));
  }

  inverse(y: Tensor): InverseResult {
    checkInput('DiagonalScaling', y, this.dim);
    return tidy(() => ({ x: mul(y, exp(neg(this.log_scale))), logAbsDet: add(zeros([y.shape[0]]), neg(sum(this.log_scale))) }));
  }
}

/** A fixed feature permutation (volume preserving): 'reverse', or a seeded random one. */
export class Permutation extends Transform {
  readonly perm: Int32Array;
  private readonly fwd: Tensor;
  private readonly inv: Tensor;

  constructor(
    readonly dim: number,
    kind: 'reverse' | { seed: number },
  ) {
    super();
    this.perm = kind === 'reverse' ? Int32Array.from({ length: dim }, (_, i) => dim - 1 - i) : permutation(dim, kind.seed);
    const inv = new Int32Array(dim);
    this.perm.forEach((src, pos) => (inv[src] = pos));
    this.fwd = keep(tensor(this.perm));
    this.inv = keep(tensor(inv));
  }

  forward(x: Tensor): ForwardResult {
    checkInput('Permutation', x, this.dim);
    return tidy(() => ({ y: indexSelect(x, 1, this.fwd), logAbsDet: zeros([x.shape[0]]) }));
  }

  inverse(y: Tensor): InverseResult {
    checkInput('Permutation', y, this.dim);
    return tidy(() => ({ x: indexSelect(y, 1, this.inv), logAbsDet: zeros([y.shape[0]]) }));
  }

  disposeBuffers(): void {
    this.fwd.dispose();
    this.inv.dispose();
  }
}

/**
 * Glow's ActNorm: y = (x + bias)·exp(log_scale) per feature. The first forward pass in training
 * mode sets bias and log_scale from that batch so its outputs have zero mean and unit variance.
 * The `initialized` flag is not a tensor, so it is not in the state dict: `Flow.loadStateDict`
 * (and so loadCheckpoint on a Flow) marks every ActNorm initialised; call `markInitialized()`
 * after loading weights any other way.
 */
export class ActNorm extends Transform {
  bias: Tensor;
  log_scale: Tensor;
  initialized = false;
  /**
   * Rows' worth of the layer's pooled variance v̄ that each feature's variance joins in the data
   * init: v_j ← (n·v_j + prior·v̄)/(n + prior). 0 is Glow's per-feature init, which on a small
   * batch scales a pixel the batch never inked by 1/(dequantization noise sd), about 900: one
   * unseen stroke there then costs thousands of nats (scripts/probe-actnorm-init.mjs).
   */
  initPrior = 0;

  constructor(readonly dim: number) {
    super();
    this.bias = parameter(zeros([dim]));
    this.log_scale = parameter(zeros([dim]));
  }

  markInitialized(): void {
    this.initialized = true;
  }

  private dataInit(x: Tensor): void {
    noGrad(() =>
      tidy(() => {
        const m = mean(x, 0);
        const v = mean(square(sub(x, m)), 0);
        const n = x.shape[0];
        const shrunk = this.initPrior > 0 ? add(mul(v, n / (n + this.initPrior)), mul(mean(v), this.initPrior / (n + this.initPrior))) : v;
        assign(this.bias, neg(m));
        assign(this.log_scale, neg(log(sqrt(add(shrunk, 1e-6)))));
      }),
    );
    this.initialized = true;
  }

  forward(x: Tensor): ForwardResult {
    checkInput('ActNorm', x, this.dim);
    if (!this.initialized && this.training) this.dataInit(x);
    return tidy(() => ({
      y: mul(add(x, this.bias), exp(this.log_scale)),
      logAbsDet: add(zeros([x.shape[0]]), sum(this.log_scale)),
    }));
  }

  inverse(y: Tensor): InverseResult {
    checkInput('ActNorm', y, this.dim);
    return tidy(() => ({
      x: sub(mul(y, exp(neg(this.log_scale))), this.bias),
      logAbsDet: add(zeros([y.shape[0]]), neg(sum(this.log_scale))),
    }));
  }
}

/**
 * RealNVP's logit pre-processing for data in (0, 1): s = α + (1 - 2α)·x, y = log s - log(1 - s),
 * log-det Σ [log(1 - 2α) - log s - log(1 - s)]. No parameters.
 */
export class LogitTransform extends Transform {
  constructor(
    readonly dim: number,
    readonly alpha = 1e-6,
  ) {
    super();
    if (!(alpha >= 0 && alpha < 0.5)) throw new Error(`LogitTransform: alpha must be in [0, 0.5), got ${alpha}`);
  }

  forward(x: Tensor): ForwardResult {
    checkInput('LogitTransform', x, this.dim);
    return tidy(() => {
      const s = affine(x, 1 - 2 * this.alpha, this.alpha);
      const logS = log(s);
      const log1mS = log(rsub(s, 1));
      const ld = add(sum(add(logS, log1mS), 1), -Math.log(1 - 2 * this.alpha) * this.dim);
      return { y: sub(logS, log1mS), logAbsDet: neg(ld) };
    });
  }

  inverse(y: Tensor): InverseResult {
    checkInput('LogitTransform', y, this.dim);
    return tidy(() => {
      // log s + log(1 - s) = -|y| - 2·log(1 + e^-|y|), finite where 1 - s rounds to 0.
      const ay = abs(y);
      const logs = neg(add(ay, mul(log(add(exp(neg(ay)), 1)), 2)));
      const ld = add(sum(logs, 1), -Math.log(1 - 2 * this.alpha) * this.dim);
      return { x: affine(sigmoid(y), 1 / (1 - 2 * this.alpha), -this.alpha / (1 - 2 * this.alpha)), logAbsDet: ld };
    });
  }
}
