/**
 * Transfer procedures for diffusion models.
 *
 * Conditional (Tian & Shen's shared embedding): the class embedding h(z) learned on the source is
 * shared; on the target it is copied and frozen, and the rest of the U-Net is fine-tuned
 * ('finetune') or re-initialised and trained ('fresh-head', Cheng et al.'s fresh score head on a
 * frozen encoder). The baseline trains the same architecture from scratch on the target alone.
 *
 * Unconditional (shared latent, X = g(U)): a U-Net has no explicit encoder, so the frozen part is
 * stated: 'finetune' copies everything and trains all of it; 'freeze-deep' also freezes the
 * lowest-resolution path (the deepest down block, the mid block and the first up block), the part
 * that models the coarse latent structure, and fits only the outer layers to the target.
 */
import type { Module } from '@transfuse/core';
import { UNet2D, type UNet2DConfig } from '../diffusion/unet.js';

export type ConditionalTransfer = 'finetune' | 'fresh-head';
export type UnconditionalTransfer = 'finetune' | 'freeze-deep';

/** A new U-Net of the same configuration holding a copy of `source`'s weights. */
export function cloneUNet(source: UNet2D, seed?: number): UNet2D {
  const copy = new UNet2D({ ...source.config, seed });
  copy.loadStateDict(source.stateDict());
  return copy;
}

function freeze(m: Module | null, what: string): void {
  if (!m) throw new Error(`transfer: the model has no ${what} to freeze`);
  for (const p of m.parameters()) p.requiresGrad = false;
}

/** The target model for conditional transfer: the source's class embedding, frozen. */
export function conditionalTransferModel(source: UNet2D, mode: ConditionalTransfer, seed?: number): UNet2D {
  if (!source.class_embedding) throw new Error('conditionalTransferModel: the source U-Net is not class-conditional (numClassEmbeds unset)');
  let target: UNet2D;
  if (mode === 'finetune') {
    target = cloneUNet(source, seed);
  } else {
    target = new UNet2D({ ...source.config, seed });
    target.class_embedding!.loadStateDict(source.class_embedding.stateDict());
  }
  freeze(target.class_embedding, 'class_embedding');
  return target;
}

/** The target model for unconditional transfer (see the module comment for what is frozen). */
export function unconditionalTransferModel(source: UNet2D, mode: UnconditionalTransfer, seed?: number): UNet2D {
  const target = cloneUNet(source, seed);
  if (mode === 'freeze-deep') {
    const levels = target.config.blockOutChannels.length;
    freeze(target.down_blocks.at(levels - 1), 'deepest down block');
    freeze(target.mid_block, 'mid block');
    freeze(target.up_blocks.at(0), 'first up block');
  }
  return target;
}

/** The no-transfer baseline: the same architecture, freshly initialised. */
export function baselineModel(config: UNet2DConfig, seed?: number): UNet2D {
  return new UNet2D({ ...config, seed });
}
