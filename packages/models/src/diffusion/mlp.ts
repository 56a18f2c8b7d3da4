/**
 * MLP score networks for vector data with a separate condition encoder, as in Cheng et al.
 * (arXiv 2502.04491): s(x, y, t) = f(x, h(y), t), f a ReLU MLP on the concatenation [x, w, emb(t)]
 * and h a ReLU MLP from y to R^{d_y} (or to (0, 1)^{d_y} through a sigmoid).
 *
 * "An L-layer MLP" is read as L weight layers (L - 1 hidden layers of `hidden` units), the
 * convention of the paper's ReLU network classes: f "2-layer, 128 hidden" is
 * Linear(in, 128) → ReLU → Linear(128, d_x).
 */
import { add, checkOptionKeys, concat, deriveSeed, exp, Linear, linear, Module, ModuleList, mul, reshape, rsub, sigmoid, sqrt, tidy, timestepEmbedding, div, type Tensor } from '@transfuse/core';
import type { Prediction } from './sampler.js';

export type MlpActivation = 'relu' | 'silu';

/** A fixed-width MLP: `depth` Linear layers (every hidden one `hidden` wide), the activation after every one but the last. */
export class FixedWidthMlp extends Module {
  layers: ModuleList<Linear>;

  constructor(
    readonly inFeatures: number,
    readonly hidden: number,
    readonly outFeatures: number,
    readonly depth: number,
    readonly activation: MlpActivation = 'relu',
    seed?: number,
  ) {
    super();
    if (!Number.isInteger(depth) || depth < 1) throw new Error(`FixedWidthMlp: depth must be an integer >= 1 (weight layers), got ${depth}`);
    const widths = [inFeatures, ...new Array<number>(depth - 1).fill(hidden), outFeatures];
    this.layers = new ModuleList(
      widths.slice(1).map((w, i) => new Linear(widths[i], w, { seed: seed === undefined ? undefined : deriveSeed(seed, i) })),
    );
  }

  forward(x: Tensor): Tensor {
    const layers = [...this.layers];
    return tidy(() => {
      let h = x;
      // The activation is fused into the matmul's epilogue.
      layers.forEach((l, i) => (h = linear(h, l.weight, l.bias, i + 1 < layers.length ? this.activation : 'none')));
      return h;
    });
  }
}

export interface ConditionEncoderConfig {
  /** D_y: the condition's dimension. */
  inFeatures: number;
  /** d_y: the representation's dimension. */
  outFeatures: number;
  hidden: number;
  /** Weight layers (default 5, the paper's h). */
  depth?: number;
  activation?: MlpActivation;
  /**
   * 'linear' (default): h(y) ∈ R^{d_y}. 'sigmoid': h(y) ∈ (0, 1)^{d_y}, the range Cheng et al.'s
   * theory assumes. Avoid it for long pre-training: Adam keeps moving weights whose gradient
   * vanished, and a 4,000-step pre-training drove every unit to 1.000 for every y (EXPERIMENTS.md).
   */
  output?: 'linear' | 'sigmoid';
  seed?: number;
}

/** h: R^{D_y} → R^{d_y} (or (0, 1)^{d_y}), the representation shared by every task. */
export class ConditionEncoder extends Module {
  mlp: FixedWidthMlp;
  readonly config: ConditionEncoderConfig;

  constructor(config: ConditionEncoderConfig) {
    super();
    checkOptionKeys('ConditionEncoder', config, ['inFeatures', 'outFeatures', 'hidden', 'depth', 'activation', 'output', 'seed']);
    this.config = config;
    this.mlp = new FixedWidthMlp(config.inFeatures, config.hidden, config.outFeatures, config.depth ?? 5, config.activation ?? 'relu', config.seed);
  }

  forward(y: Tensor): Tensor {
    if (y.rank !== 2 || y.shape[1] !== this.config.inFeatures) {
      throw new Error(`ConditionEncoder: expected y of shape [B, ${this.config.inFeatures}], got [${y.shape.join(', ')}]`);
    }
    return tidy(() => (this.config.output === 'sigmoid' ? sigmoid(this.mlp.forward(y)) : this.mlp.forward(y)));
  }
}

/**
 * The scales of x̂0 = c_skip·x_t + c_out·F on the VP process x_t = α x0 + σ ε, α = e^{-t}
 * (Karras et al.'s EDM preconditioning): c_skip = α σ_d² / (α² σ_d² + σ²) is the best linear
 * estimate of x0 from x_t for data of standard deviation σ_d, and c_out = σ σ_d / √(α² σ_d² + σ²)
 * its error's scale, so the target F = (x0 - c_skip x_t) / c_out has unit variance at every t.
 * At small t, x̂0 ≈ x_t (samples keep their detail); at large t, x̂0 ≈ σ_d F. t [B] → [B, 1] each.
 */
export function x0Scales(t: Tensor, dataStd: number): { skip: Tensor; out: Tensor } {
  return tidy(() => {
    const a = reshape(exp(mul(t, -1)), [t.size, 1]);
    const a2 = mul(a, a);
    const s2 = rsub(a2, 1);
    const denom = add(mul(a2, dataStd * dataStd), s2);
    return { skip: div(mul(a, dataStd * dataStd), denom), out: mul(sqrt(div(s2, denom)), dataStd) };
  });
}

export interface MlpScoreNetConfig {
  /** d_x: the data dimension (and the output's). */
  dataDim: number;
  /** d_y: the encoder's output dimension fed to f. */
  condDim: number;
  hidden: number;
  /** Weight layers (default 2, the paper's f for the synthetic experiment). */
  depth?: number;
  /** Sinusoidal time-embedding width (default 16). */
  timeDim?: number;
  /** The process horizon T: t ∈ [0, T] is embedded as 1000·t/T, the DDPM step range. */
  tMax: number;
  activation?: MlpActivation;
  /**
   * What f outputs (default 'epsilon'). 'sample': x̂0 = c_skip·x_t + c_out·F (see x0Scales), for
   * data wider than the hidden layers: F has no full-rank noise to reproduce at small t.
   */
  prediction?: Exclude<Prediction, 'v'>;
  /** σ_d of x0Scales (default 0.5, for images in [-1, 1]). */
  dataStd?: number;
  seed?: number;
}

/** f(x_t, w, t) → ε̂ (the noise prediction; the score is -ε̂ / σ_t), or x̂0 with prediction 'sample'. */
export class MlpScoreNet extends Module {
  mlp: FixedWidthMlp;
  readonly config: Required<Omit<MlpScoreNetConfig, 'seed'>> & { seed?: number };

  constructor(config: MlpScoreNetConfig) {
    super();
    checkOptionKeys('MlpScoreNet', config, ['dataDim', 'condDim', 'hidden', 'depth', 'timeDim', 'tMax', 'activation', 'prediction', 'dataStd', 'seed']);
    this.config = { depth: 2, timeDim: 16, activation: 'relu', prediction: 'epsilon', dataStd: 0.5, ...config };
    const c = this.config;
    if (!(c.tMax > 0)) throw new Error(`MlpScoreNet: tMax must be > 0, got ${c.tMax}`);
    if (c.prediction !== 'epsilon' && c.prediction !== 'sample') throw new Error(`MlpScoreNet: prediction must be 'epsilon' or 'sample', got '${c.prediction}'`);
    this.mlp = new FixedWidthMlp(c.dataDim + c.condDim + c.timeDim, c.hidden, c.dataDim, c.depth, c.activation, c.seed);
  }

  /** x [B, d_x], w = h(y) [B, d_y], t [B] float32 process times. */
  forward(x: Tensor, w: Tensor, t: Tensor): Tensor {
    const c = this.config;
    const b = x.shape[0];
    if (x.rank !== 2 || x.shape[1] !== c.dataDim) throw new Error(`MlpScoreNet: expected x [B, ${c.dataDim}], got [${x.shape.join(', ')}]`);
    if (w.rank !== 2 || w.shape[0] !== b || w.shape[1] !== c.condDim) throw new Error(`MlpScoreNet: expected w [${b}, ${c.condDim}], got [${w.shape.join(', ')}]`);
    if (t.rank !== 1 || t.size !== b || t.dtype !== 'float32') throw new Error(`MlpScoreNet: expected float32 times t [${b}], got ${t.dtype} [${t.shape.join(', ')}]`);
    return tidy(() => {
      const f = this.mlp.forward(concat([x, w, timestepEmbedding(mul(t, 1000 / c.tMax), c.timeDim)], 1));
      if (c.prediction !== 'sample') return f;
      const k = x0Scales(t, c.dataStd);
      return add(mul(x, k.skip), mul(f, k.out));
    });
  }
}
