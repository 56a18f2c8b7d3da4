/**
 * UNet2D: the layout of diffusers' `UNet2DModel` (DownBlock2D / UpBlock2D, optional attention
 * blocks, a mid block with one attention layer), with the same parameter names, so a state dict
 * maps one-to-one onto the PyTorch model. Class conditioning adds an embedding of the label to the
 * timestep embedding; that embedding is the `class_embedding` module the transfer procedures
 * freeze.
 */
import {
  add,
  cast,
  checkOptionKeys,
  concat,
  Conv2d,
  deriveSeed,
  Downsample2d,
  Dropout,
  Embedding,
  full,
  GroupNorm,
  Linear,
  Module,
  ModuleList,
  reshape,
  silu,
  SpatialAttention,
  tidy,
  timestepEmbedding,
  Upsample2d,
  type Tensor,
} from '@transfuse/core';

const UNET_CONFIG_KEYS = ['sampleSize', 'inChannels', 'outChannels', 'blockOutChannels', 'layersPerBlock', 'normNumGroups', 'attentionLevels', 'attentionHeadDim', 'dropout', 'numClassEmbeds', 'seed'];

export interface UNet2DConfig {
  /** Image height and width; must be divisible by 2^(levels - 1). */
  sampleSize: number;
  inChannels?: number;
  outChannels?: number;
  /** Channels per level, e.g. [32, 64, 64]. */
  blockOutChannels?: number[];
  layersPerBlock?: number;
  /** GroupNorm groups (every channel count must be divisible by it). */
  normNumGroups?: number;
  /** Levels (0 = highest resolution) whose down and up blocks have self-attention after each ResNet. */
  attentionLevels?: number[];
  /** Channels per attention head (default: one head). */
  attentionHeadDim?: number;
  dropout?: number;
  /** Number of classes for class conditioning (an Embedding added to the timestep embedding). */
  numClassEmbeds?: number;
  seed?: number;
}

/** Presets: `tiny` for tests and CPU smoke runs, `small` (the PyTorch baseline), `paper` (diffusers-sized). */
export const UNET_PRESETS: Record<'tiny' | 'small' | 'paper', Omit<UNet2DConfig, 'sampleSize'>> = {
  tiny: { blockOutChannels: [16, 32], layersPerBlock: 1, normNumGroups: 8 },
  small: { blockOutChannels: [32, 64, 64], layersPerBlock: 2, normNumGroups: 8 },
  paper: { blockOutChannels: [64, 128, 128], layersPerBlock: 2, normNumGroups: 32 },
};

type Seeds = (k: number) => number | undefined;

/** diffusers' ResnetBlock2D: GN, SiLU, conv3x3, + projected embedding, GN, SiLU, dropout, conv3x3, skip. */
export class ResnetBlock2D extends Module {
  norm1: GroupNorm;
  conv1: Conv2d;
  time_emb_proj: Linear;
  norm2: GroupNorm;
  dropout: Dropout;
  conv2: Conv2d;
  conv_shortcut: Conv2d | null;

  constructor(inChannels: number, readonly outChannels: number, embDim: number, groups: number, dropout: number, seed: Seeds) {
    super();
    this.norm1 = new GroupNorm(groups, inChannels);
    this.conv1 = new Conv2d(inChannels, outChannels, 3, { padding: 1, seed: seed(0) });
    this.time_emb_proj = new Linear(embDim, outChannels, { seed: seed(1) });
    this.norm2 = new GroupNorm(groups, outChannels);
    this.dropout = new Dropout(dropout, { seed: seed(2) });
    this.conv2 = new Conv2d(outChannels, outChannels, 3, { padding: 1, seed: seed(3) });
    this.conv_shortcut = inChannels === outChannels ? null : new Conv2d(inChannels, outChannels, 1, { seed: seed(4) });
  }

  forward(x: Tensor, emb: Tensor): Tensor {
    return tidy(() => {
      let h = this.conv1.forward(this.norm1.forward(x, 'silu'));
      const e = this.time_emb_proj.forward(silu(emb));
      h = add(h, reshape(e, [e.shape[0], this.outChannels, 1, 1]));
      h = this.conv2.forward(this.dropout.forward(this.norm2.forward(h, 'silu')));
      return add(this.conv_shortcut ? this.conv_shortcut.forward(x) : x, h);
    });
  }
}

class DownBlock extends Module {
  resnets: ModuleList<ResnetBlock2D>;
  attentions: ModuleList<SpatialAttention> | null;
  downsamplers: ModuleList<Downsample2d> | null;
  constructor(resnets: ResnetBlock2D[], attentions: SpatialAttention[] | null, down: Downsample2d | null) {
    super();
    this.resnets = new ModuleList(resnets);
    this.attentions = attentions ? new ModuleList(attentions) : null;
    this.downsamplers = down ? new ModuleList([down]) : null;
  }
}

class UpBlock extends Module {
  resnets: ModuleList<ResnetBlock2D>;
  attentions: ModuleList<SpatialAttention> | null;
  upsamplers: ModuleList<Upsample2d> | null;
  constructor(resnets: ResnetBlock2D[], attentions: SpatialAttention[] | null, up: Upsample2d | null) {
    super();
    this.resnets = new ModuleList(resnets);
    this.attentions = attentions ? new ModuleList(attentions) : null;
    this.upsamplers = up ? new ModuleList([up]) : null;
  }
}

class MidBlock extends Module {
  resnets: ModuleList<ResnetBlock2D>;
  attentions: ModuleList<SpatialAttention>;
  constructor(resnets: ResnetBlock2D[], attention: SpatialAttention) {
    super();
    this.resnets = new ModuleList(resnets);
    this.attentions = new ModuleList([attention]);
  }
}

class TimestepMlp extends Module {
  linear_1: Linear;
  linear_2: Linear;
  constructor(inDim: number, dim: number, seed: Seeds) {
    super();
    this.linear_1 = new Linear(inDim, dim, { seed: seed(0) });
    this.linear_2 = new Linear(dim, dim, { seed: seed(1) });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.linear_2.forward(silu(this.linear_1.forward(x))));
  }
}

export class UNet2D extends Module {
  readonly config: Required<Omit<UNet2DConfig, 'numClassEmbeds' | 'seed' | 'attentionHeadDim'>> & Pick<UNet2DConfig, 'numClassEmbeds' | 'seed' | 'attentionHeadDim'>;
  conv_in: Conv2d;
  time_embedding: TimestepMlp;
  class_embedding: Embedding | null;
  down_blocks: ModuleList<DownBlock>;
  mid_block: MidBlock;
  up_blocks: ModuleList<UpBlock>;
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;

  constructor(config: UNet2DConfig) {
    super();
    checkOptionKeys('UNet2D', config, UNET_CONFIG_KEYS);
    const c = (this.config = {
      inChannels: 1,
      outChannels: 1,
      blockOutChannels: [32, 64, 64],
      layersPerBlock: 2,
      normNumGroups: 8,
      attentionLevels: [],
      dropout: 0,
      ...config,
    });
    const boc = c.blockOutChannels;
    const levels = boc.length;
    if (levels < 1) throw new Error('UNet2D: blockOutChannels must list at least one level');
    if (!Number.isInteger(c.sampleSize) || c.sampleSize % 2 ** (levels - 1) !== 0) {
      throw new Error(`UNet2D: sampleSize ${c.sampleSize} must be divisible by 2^(levels - 1) = ${2 ** (levels - 1)} for ${levels} levels`);
    }
    for (const ch of boc) {
      if (ch % c.normNumGroups !== 0) throw new Error(`UNet2D: block channels ${ch} are not divisible by normNumGroups ${c.normNumGroups}`);
    }
    let next = 0;
    const seeds = (): Seeds => {
      const base = c.seed === undefined ? undefined : deriveSeed(c.seed, next++);
      return (k) => (base === undefined ? undefined : deriveSeed(base, k));
    };
    const tdim = 4 * boc[0];
    const attention = (ch: number) =>
      new SpatialAttention(ch, { heads: c.attentionHeadDim ? ch / c.attentionHeadDim : 1, normGroups: c.normNumGroups, seed: seeds()(0) });
    const resnet = (cin: number, cout: number) => new ResnetBlock2D(cin, cout, tdim, c.normNumGroups, c.dropout, seeds());

    this.conv_in = new Conv2d(c.inChannels, boc[0], 3, { padding: 1, seed: seeds()(0) });
    this.time_embedding = new TimestepMlp(boc[0], tdim, seeds());
    this.class_embedding = c.numClassEmbeds ? new Embedding(c.numClassEmbeds, tdim, { seed: seeds()(0) }) : null;

    const down: DownBlock[] = [];
    boc.forEach((out, i) => {
      const cin = i === 0 ? boc[0] : boc[i - 1];
      const hasAttn = c.attentionLevels.includes(i);
      const resnets = Array.from({ length: c.layersPerBlock }, (_, j) => resnet(j === 0 ? cin : out, out));
      const attns = hasAttn ? resnets.map(() => attention(out)) : null;
      down.push(new DownBlock(resnets, attns, i < levels - 1 ? new Downsample2d(out, { seed: seeds()(0) }) : null));
    });
    this.down_blocks = new ModuleList(down);

    const mid = boc[levels - 1];
    this.mid_block = new MidBlock([resnet(mid, mid), resnet(mid, mid)], attention(mid));

    const rev = [...boc].reverse();
    const up: UpBlock[] = [];
    rev.forEach((out, i) => {
      const prevOut = i === 0 ? rev[0] : rev[i - 1];
      const skipIn = rev[Math.min(i + 1, levels - 1)];
      const level = levels - 1 - i;
      const resnets = Array.from({ length: c.layersPerBlock + 1 }, (_, j) => {
        const skip = j === c.layersPerBlock ? skipIn : out;
        return resnet((j === 0 ? prevOut : out) + skip, out);
      });
      const attns = c.attentionLevels.includes(level) ? resnets.map(() => attention(out)) : null;
      up.push(new UpBlock(resnets, attns, i < levels - 1 ? new Upsample2d(out, { seed: seeds()(0) }) : null));
    });
    this.up_blocks = new ModuleList(up);

    this.conv_norm_out = new GroupNorm(c.normNumGroups, boc[0]);
    this.conv_out = new Conv2d(boc[0], c.outChannels, 3, { padding: 1, seed: seeds()(0) });
  }

  /** The timestep (+ class) embedding [B, 4·c0] for integer timesteps t and optional int32 labels. */
  embed(t: Tensor | number, batch: number, labels?: Tensor): Tensor {
    return tidy(() => {
      const tt = typeof t === 'number' ? full([batch], t) : t.dtype === 'int32' ? cast(t, 'float32') : t;
      let emb = this.time_embedding.forward(timestepEmbedding(tt, this.config.blockOutChannels[0], { flipSinToCos: true, downscaleFreqShift: 0 }));
      if (this.class_embedding) {
        if (!labels) throw new Error('UNet2D: the model is class-conditional (numClassEmbeds set); pass labels');
        emb = add(emb, this.class_embedding.forward(labels));
      } else if (labels) {
        throw new Error('UNet2D: labels given to an unconditional model (set numClassEmbeds)');
      }
      return emb;
    });
  }

  /** Predicts the noise (or v) for x [B, inChannels, H, W] at timesteps t (a number or [B] tensor). */
  forward(x: Tensor, t: Tensor | number, labels?: Tensor): Tensor {
    const c = this.config;
    if (x.rank !== 4 || x.shape[1] !== c.inChannels || x.shape[2] % 2 ** (c.blockOutChannels.length - 1) !== 0 || x.shape[3] % 2 ** (c.blockOutChannels.length - 1) !== 0) {
      throw new Error(
        `UNet2D: expected input [B, ${c.inChannels}, H, W] with H and W divisible by ${2 ** (c.blockOutChannels.length - 1)}, got [${x.shape.join(', ')}]`,
      );
    }
    const batch = x.shape[0];
    if (labels && (labels.rank !== 1 || labels.size !== batch)) {
      throw new Error(`UNet2D: labels must have shape [${batch}], got [${labels.shape.join(', ')}]`);
    }
    return tidy(() => {
      const emb = this.embed(t, batch, labels);
      let h = this.conv_in.forward(x);
      const skips: Tensor[] = [h];
      for (const block of this.down_blocks) {
        [...block.resnets].forEach((r, j) => {
          h = r.forward(h, emb);
          if (block.attentions) h = block.attentions.at(j).forward(h);
          skips.push(h);
        });
        if (block.downsamplers) {
          h = block.downsamplers.at(0).forward(h);
          skips.push(h);
        }
      }
      h = this.mid_block.resnets.at(0).forward(h, emb);
      h = this.mid_block.attentions.at(0).forward(h);
      h = this.mid_block.resnets.at(1).forward(h, emb);
      for (const block of this.up_blocks) {
        [...block.resnets].forEach((r, j) => {
          h = r.forward(concat([h, skips.pop()!], 1), emb);
          if (block.attentions) h = block.attentions.at(j).forward(h);
        });
        if (block.upsamplers) h = block.upsamplers.at(0).forward(h);
      }
      return this.conv_out.forward(this.conv_norm_out.forward(h, 'silu'));
    });
  }
}
