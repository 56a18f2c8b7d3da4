/**
 * Flow models: a FlowSequence of transforms (data → base space), a base distribution, and for
 * conditional flows one shared `condition_embedding` h(z) whose output, joined with an optional
 * task-specific condition, is the context every coupling conditioner reads:
 * w(x1, z) = w̃(x1, h(z), z_task) (Tian & Shen's shared-embedding condition).
 */
import {
  add,
  cast,
  checkOptionKeys,
  concat,
  deriveSeed,
  Embedding,
  eq,
  arange,
  exp,
  Layer,
  mean,
  Module,
  mul,
  neg,
  noGrad,
  parameter,
  randn,
  reshape,
  square,
  sub,
  sum,
  tidy,
  zeros,
  type LoadResult,
  type StateDictInput,
  type Tensor,
} from '@transfuse/core';
import { ActNorm, AdditiveCoupling, AffineCoupling, DiagonalScaling, FlowSequence, LogitTransform, Permutation, type Mask, type Transform } from './transforms.js';

const LOG_2PI = Math.log(2 * Math.PI);

/** A base density on R^dim. */
export abstract class BaseDistribution extends Module {
  constructor(readonly dim: number) {
    super();
  }
  abstract logProb(z: Tensor): Tensor;
  abstract sample(n: number, seed: number): Tensor;
}

const normalLogProb = (z: Tensor): Tensor => tidy(() => add(mul(sum(square(z), 1), -0.5), (-0.5 * LOG_2PI) * z.shape[1]));

export class StandardNormal extends BaseDistribution {
  logProb(z: Tensor): Tensor {
    return normalLogProb(z);
  }

  sample(n: number, seed: number): Tensor {
    return randn([n, this.dim], { seed });
  }
}

/** N(loc, diag(exp(log_scale))²) with learned loc and log_scale (zero-initialised: N(0, I)). */
export class DiagonalGaussian extends BaseDistribution {
  loc: Tensor;
  log_scale: Tensor;

  constructor(dim: number) {
    super(dim);
    this.loc = parameter(zeros([dim]));
    this.log_scale = parameter(zeros([dim]));
  }

  logProb(z: Tensor): Tensor {
    return tidy(() => sub(normalLogProb(mul(sub(z, this.loc), exp(neg(this.log_scale)))), sum(this.log_scale)));
  }

  sample(n: number, seed: number): Tensor {
    return tidy(() => add(mul(randn([n, this.dim], { seed }), exp(this.log_scale)), this.loc));
  }
}

/** A base density that is itself a flow onto N(0, I): a learnable law of the latent U. */
export class FlowBase extends BaseDistribution {
  transforms: FlowSequence;

  constructor(dim: number, transforms: readonly Transform[]) {
    super(dim);
    this.transforms = new FlowSequence(transforms);
  }

  logProb(u: Tensor): Tensor {
    return tidy(() => {
      const r = this.transforms.forward(u);
      return add(normalLogProb(r.y), r.logAbsDet);
    });
  }

  sample(n: number, seed: number): Tensor {
    return tidy(() => this.transforms.inverse(randn([n, this.dim], { seed })).x);
  }
}

/** Labels → one-hot rows (no parameters): the baseline's conditioning. */
export class OneHot extends Layer {
  constructor(readonly numClasses: number) {
    super();
  }

  forward(labels: Tensor): Tensor {
    if (labels.dtype !== 'int32' || labels.rank !== 1) throw new Error(`OneHot: labels must be int32 [B], got ${labels.dtype} [${labels.shape.join(', ')}]`);
    return tidy(() => eq(reshape(cast(labels, 'float32'), [labels.shape[0], 1]), arange(0, this.numClasses)));
  }
}

/** The condition of a conditional flow: class labels (int32 [B]) and an optional task-specific part [B, taskDim]. */
export interface FlowCondition {
  labels: Tensor;
  task?: Tensor;
}

const FLOW_CONFIG_KEYS = ['dim', 'coupling', 'layers', 'hidden', 'mask', 'image', 'scaleBound', 'permutation', 'actnorm', 'finalScaling', 'condition', 'base', 'logitAlpha', 'seed'];

export interface FlowConfig {
  dim: number;
  coupling: 'affine' | 'additive';
  /** Number of coupling layers; layer k keeps mask parity k mod 2 (alternating). */
  layers: number;
  /** Hidden widths of each conditioner MLP. */
  hidden: number[];
  /** Coupling masks (default 'half'); checkerboard and channel masks need `image`. */
  mask?: 'half' | 'checkerboard' | 'channel';
  image?: { channels: number; height: number; width: number };
  /** Affine couplings: s = c·tanh(s_raw / c) (default 1, the baseline's tanh). */
  scaleBound?: number;
  /** A fixed permutation after every coupling but the last (default 'none'). */
  permutation?: 'none' | 'reverse' | 'random';
  /** ActNorm before every coupling. */
  actnorm?: boolean;
  /** NICE's learned diagonal scaling after the last coupling. */
  finalScaling?: boolean;
  /** Class conditioning: h = one-hot (no parameters) or a learned Embedding(numClasses, dim). */
  condition?: { numClasses: number; embedding: 'onehot' | number; taskDim?: number };
  /** 'normal' (default), a learned 'diagonal' Gaussian, or a small base flow for the latent law. */
  base?: 'normal' | 'diagonal' | { layers: number; hidden: number[] };
  /** Logit pre-processing with this α for data in (0, 1) (images); null/absent for none. */
  logitAlpha?: number | null;
  seed?: number;
}

function maskFor(c: FlowConfig, parity: 0 | 1): Mask {
  const kind = c.mask ?? 'half';
  if (kind === 'half') return { kind, parity };
  if (!c.image) throw new Error(`Flow: a ${kind} mask needs config.image {channels, height, width}`);
  return kind === 'checkerboard' ? { kind, height: c.image.height, width: c.image.width, parity } : { kind, ...c.image, parity };
}

/** The coupling stack of a config, seeded from `seed` (shared by the main flow and a base flow). */
function couplingStack(c: FlowConfig, layers: number, hidden: number[], contextDim: number, seed: number, opts: { extras: boolean }): Transform[] {
  const out: Transform[] = [];
  for (let k = 0; k < layers; k++) {
    if (opts.extras && c.actnorm) out.push(new ActNorm(c.dim));
    const mask = maskFor(c, (k % 2) as 0 | 1);
    const s = deriveSeed(seed, k);
    out.push(
      c.coupling === 'affine'
        ? new AffineCoupling(c.dim, mask, { hidden, contextDim, scaleBound: c.scaleBound, seed: s })
        : new AdditiveCoupling(c.dim, mask, { hidden, contextDim, seed: s }),
    );
    const perm = opts.extras ? (c.permutation ?? 'none') : 'none';
    if (perm !== 'none' && k + 1 < layers) out.push(new Permutation(c.dim, perm === 'reverse' ? 'reverse' : { seed: deriveSeed(seed, 1000 + k) }));
  }
  return out;
}

export class Flow extends Module {
  /** h(z), shared by every coupling (null for unconditional flows). */
  condition_embedding: Layer | null;
  transforms: FlowSequence;
  base: BaseDistribution;
  readonly contextDim: number;

  constructor(readonly config: FlowConfig) {
    super();
    checkOptionKeys('Flow', config, FLOW_CONFIG_KEYS);
    const c = config;
    if (!Number.isInteger(c.dim) || c.dim < 2) throw new Error(`Flow: dim must be an integer >= 2, got ${c.dim}`);
    if (!Number.isInteger(c.layers) || c.layers < 1) throw new Error(`Flow: layers must be a positive integer, got ${c.layers}`);
    const seed = c.seed ?? 0;
    const cond = c.condition;
    if (cond) {
      this.condition_embedding = cond.embedding === 'onehot' ? new OneHot(cond.numClasses) : new Embedding(cond.numClasses, cond.embedding, { seed: deriveSeed(seed, 1) });
      this.contextDim = (cond.embedding === 'onehot' ? cond.numClasses : cond.embedding) + (cond.taskDim ?? 0);
    } else {
      this.condition_embedding = null;
      this.contextDim = 0;
    }
    const ts: Transform[] = [];
    if (c.logitAlpha !== undefined && c.logitAlpha !== null) ts.push(new LogitTransform(c.dim, c.logitAlpha));
    ts.push(...couplingStack(c, c.layers, c.hidden, this.contextDim, deriveSeed(seed, 2), { extras: true }));
    if (c.finalScaling) ts.push(new DiagonalScaling(c.dim));
    this.transforms = new FlowSequence(ts);
    const b = c.base ?? 'normal';
    if (b === 'normal') this.base = new StandardNormal(c.dim);
    else if (b === 'diagonal') this.base = new DiagonalGaussian(c.dim);
    else this.base = new FlowBase(c.dim, couplingStack({ ...c, coupling: 'affine' }, b.layers, b.hidden, 0, deriveSeed(seed, 3), { extras: false }));
  }

  get dim(): number {
    return this.config.dim;
  }

  /** The context [B, contextDim] for a condition: [h(labels), task]. */
  context(cond?: FlowCondition): Tensor | undefined {
    const c = this.config.condition;
    if (!c) {
      if (cond) throw new Error('Flow: a condition was given to an unconditional flow');
      return undefined;
    }
    if (!cond) throw new Error(`Flow: this flow is conditional (${c.numClasses} classes); pass { labels }`);
    const taskDim = c.taskDim ?? 0;
    if (taskDim > 0 && (!cond.task || cond.task.rank !== 2 || cond.task.shape[1] !== taskDim || cond.task.shape[0] !== cond.labels.shape[0])) {
      throw new Error(`Flow: expected a task condition [${cond.labels.shape[0]}, ${taskDim}], got ${cond.task ? `[${cond.task.shape.join(', ')}]` : 'none'}`);
    }
    const h = this.condition_embedding!.forward(cond.labels);
    return taskDim > 0 ? tidy(() => concat([h, cond.task!], 1)) : h;
  }

  /** Data → base space: z and log|det ∂z/∂x| per row. */
  forward(x: Tensor, cond?: FlowCondition): { z: Tensor; logAbsDet: Tensor } {
    return tidy(() => {
      const r = this.transforms.forward(x, this.context(cond));
      return { z: r.y, logAbsDet: r.logAbsDet };
    });
  }

  /** Base space → data. */
  inverse(z: Tensor, cond?: FlowCondition): { x: Tensor; logAbsDet: Tensor } {
    return tidy(() => this.transforms.inverse(z, this.context(cond)));
  }

  /** log p(x | cond) per row, [B] (nats). */
  logProb(x: Tensor, cond?: FlowCondition): Tensor {
    return tidy(() => {
      const r = this.forward(x, cond);
      return add(this.base.logProb(r.z), r.logAbsDet);
    });
  }

  /** Mean negative log-likelihood in nats per dimension (a scalar tensor; the training loss). */
  nll(x: Tensor, cond?: FlowCondition): Tensor {
    return tidy(() => mul(mean(this.logProb(x, cond)), -1 / this.dim));
  }

  /** n samples [n, dim] (no graph recorded); a conditional flow needs `cond` with n rows. */
  sample(n: number, opts: { seed: number; cond?: FlowCondition }): Tensor {
    return noGrad(() => tidy(() => this.inverse(this.base.sample(n, opts.seed), opts.cond).x));
  }

  /** Loading weights marks ActNorm layers initialised (their flag is not in the state dict). */
  override loadStateDict(dict: StateDictInput, opts: { strict?: boolean } = {}): LoadResult {
    const r = super.loadStateDict(dict, opts);
    for (const [, m] of this.namedModules()) if (m instanceof ActNorm) m.markInitialized();
    return r;
  }

  /**
   * Marks the ActNorm layers uninitialised, so the next training forward pass sets them from its
   * batch as for a fresh flow. Transfer calls this: ActNorm holds the source data's per-pixel
   * statistics, and where the target's differ (USPS digits fill the frame, MNIST's do not) the
   * copied flow starts at thousands of nats/dim on the target.
   */
  resetActNorm(): void {
    for (const [, m] of this.transforms.namedModules()) if (m instanceof ActNorm) m.initialized = false;
  }

  /**
   * Sets every uninitialised ActNorm from the rows x (one training-mode pass, no graph), each
   * feature's variance shrunk toward its layer's pooled variance with the weight of `prior` rows
   * (ActNorm.initPrior). More rows than one batch, and a prior, keep a small data set's blank
   * pixels from being scaled up a thousandfold. The flow is left in training mode.
   */
  initActNorm(x: Tensor, cond: FlowCondition | undefined, prior: number): void {
    if (!(prior >= 0 && Number.isFinite(prior))) throw new Error(`Flow.initActNorm: prior must be a finite number >= 0, got ${prior}`);
    const layers = [...this.transforms.namedModules()].map(([, m]) => m).filter((m): m is ActNorm => m instanceof ActNorm);
    if (!layers.length) throw new Error('Flow.initActNorm: the flow has no ActNorm layers (config.actnorm is off)');
    for (const m of layers) m.initPrior = prior;
    this.train();
    noGrad(() => this.nll(x, cond).dispose());
  }

  /** Frees the parameters and the layers' index tensors. */
  override dispose(): void {
    super.dispose();
    for (const [, m] of this.namedModules()) (m as { disposeBuffers?: () => void }).disposeBuffers?.();
  }
}

/** Nats per dimension on data in (0, 1) that dequantizes 8-bit levels → bits per dimension of the 8-bit data. */
export const bitsPerDimFromNats = (natsPerDim: number): number => natsPerDim / Math.LN2 + 8;
