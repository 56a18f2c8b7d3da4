/** Multi-head self-attention over the spatial positions of a feature map (diffusers' AttnBlock). */
import { tidy } from '../scope.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, div, matmul, mul, permute, reshape, softmax, transpose } from '../ops/index.js';
import { deriveSeed } from './init.js';
import { Dropout, Linear } from './layers.js';
import { Layer, ModuleList } from './module.js';
import { GroupNorm } from './norm.js';

export interface SpatialAttentionOptions {
  /** Attention heads (default 1). */
  heads?: number;
  /** Channels per head (default channels / heads); q, k and v have heads · dimHead channels. */
  dimHead?: number;
  /** Groups of the GroupNorm applied first (default 32). */
  normGroups?: number;
  /** GroupNorm epsilon (default 1e-5). */
  eps?: number;
  /** The output is (attention + input) / rescaleOutputFactor (default 1). */
  rescaleOutputFactor?: number;
  /** Add the input back (default true). */
  residual?: boolean;
  /** Dropout after the output projection (default 0). */
  dropout?: number;
  seed?: number;
}

/**
 * diffusers' `Attention` as a U-Net uses it on [B, C, H, W]: GroupNorm, q/k/v projections with
 * bias over the H·W positions, softmax(q kᵀ / sqrt(dimHead)) v per head, output projection
 * (`to_out.0`, with `to_out.1` a Dropout), residual add. Parameter names match diffusers':
 * group_norm.*, to_q.*, to_k.*, to_v.*, to_out.0.*.
 */
export class SpatialAttention extends Layer {
  group_norm: GroupNorm;
  to_q: Linear;
  to_k: Linear;
  to_v: Linear;
  to_out: ModuleList<Linear | Dropout>;
  readonly heads: number;
  readonly dimHead: number;

  constructor(
    readonly channels: number,
    readonly opts: SpatialAttentionOptions = {},
  ) {
    super();
    this.heads = opts.heads ?? 1;
    if (!Number.isInteger(this.heads) || this.heads < 1) throw new Error(`SpatialAttention: heads must be a positive integer, got ${this.heads}`);
    if (opts.dimHead === undefined && channels % this.heads !== 0) {
      throw new Error(`SpatialAttention: ${channels} channels do not split into ${this.heads} heads; pass dimHead`);
    }
    this.dimHead = opts.dimHead ?? channels / this.heads;
    const inner = this.heads * this.dimHead;
    const seed = (k: number) => (opts.seed === undefined ? undefined : deriveSeed(opts.seed, k));
    this.group_norm = new GroupNorm(opts.normGroups ?? 32, channels, { eps: opts.eps ?? 1e-5 });
    this.to_q = new Linear(channels, inner, { seed: seed(0) });
    this.to_k = new Linear(channels, inner, { seed: seed(1) });
    this.to_v = new Linear(channels, inner, { seed: seed(2) });
    this.to_out = new ModuleList<Linear | Dropout>([new Linear(inner, channels, { seed: seed(3) }), new Dropout(opts.dropout ?? 0)]);
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.channels) {
      throw new Error(`SpatialAttention: expected input [B, ${this.channels}, H, W], got ${fmt(x.shape)}`);
    }
    const [b, c, h, w] = x.shape;
    const { heads, dimHead } = this;
    const rescale = this.opts.rescaleOutputFactor ?? 1;
    return tidy(() => {
      // [B, C, H, W] → [B, HW, C]: one row per position.
      const tokens = transpose(reshape(this.group_norm.forward(x), [b, c, h * w]), 1, 2);
      const split = (t: Tensor, perm: number[]) => permute(reshape(t, [b, h * w, heads, dimHead]), perm);
      // Scaling q (HW x d) instead of the scores (HW x HW) is the cheaper place.
      const q = split(mul(this.to_q.forward(tokens), 1 / Math.sqrt(dimHead)), [0, 2, 1, 3]);
      const kT = split(this.to_k.forward(tokens), [0, 2, 3, 1]);
      const v = split(this.to_v.forward(tokens), [0, 2, 1, 3]);
      const attn = softmax(matmul(q, kT), -1);
      const merged = reshape(permute(matmul(attn, v), [0, 2, 1, 3]), [b, h * w, heads * dimHead]);
      let out = merged;
      for (const m of this.to_out) out = m.forward(out);
      const back = reshape(transpose(out, 1, 2), [b, c, h, w]);
      const res = this.opts.residual === false ? back : add(back, x);
      return rescale === 1 ? res : div(res, rescale);
    });
  }
}
