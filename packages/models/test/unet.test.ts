import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { tensor } from '@transfuse/core';
import { UNet2D, UNET_PRESETS } from '../src/diffusion/index.js';
import { useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

const count = (m: UNet2D) => m.namedParameters().reduce((s, [, p]) => s + p.size, 0);

describe('UNet2D', () => {
  test('the small preset has exactly the parameters of diffusers UNet2DModel (32, 64, 64), 10 classes', () => {
    // TORCH_BASELINE.md: 1,540,609 parameters for block_out_channels (32, 64, 64), num_class_embeds=10.
    const m = new UNet2D({ sampleSize: 16, ...UNET_PRESETS.small, numClassEmbeds: 10, seed: 1 });
    expect(count(m)).toBe(1_540_609);
    const names = m.namedParameters().map(([n]) => n);
    for (const n of [
      'conv_in.weight',
      'time_embedding.linear_1.weight',
      'time_embedding.linear_2.bias',
      'class_embedding.weight',
      'down_blocks.0.resnets.1.conv1.weight',
      'down_blocks.1.resnets.0.conv_shortcut.weight',
      'down_blocks.0.downsamplers.0.conv.weight',
      'mid_block.attentions.0.to_q.weight',
      'mid_block.attentions.0.to_out.0.bias',
      'mid_block.resnets.1.time_emb_proj.weight',
      'up_blocks.1.resnets.2.conv_shortcut.weight',
      'up_blocks.0.upsamplers.0.conv.weight',
      'conv_norm_out.weight',
      'conv_out.bias',
    ]) {
      expect(names, n).toContain(n);
    }
    m.dispose();
  });

  test('the 64-128-128 configuration has 6,140,929 parameters', () => {
    const m = new UNet2D({ sampleSize: 16, blockOutChannels: [64, 128, 128], normNumGroups: 8, numClassEmbeds: 10, seed: 1 });
    expect(count(m)).toBe(6_140_929);
    m.dispose();
  });

  for (const [preset, size] of [['tiny', 16], ['tiny', 28], ['small', 16], ['small', 28]] as const) {
    test(`${preset} preset at ${size}x${size}: output shape, gradients reach every parameter`, async () => {
      const m = new UNet2D({ sampleSize: size, ...UNET_PRESETS[preset], numClassEmbeds: 10, seed: 2 });
      const x = T.randn([2, 1, size, size], { seed: 3 });
      const y = m.forward(x, tensor(new Int32Array([10, 900])), tensor(new Int32Array([3, 7])));
      expect(y.shape).toEqual([2, 1, size, size]);
      T.mean(T.square(y)).backward();
      const missing = m.namedParameters().filter(([, p]) => !p.grad).map(([n]) => n);
      expect(missing).toEqual([]);
      // Every gradient is finite and at least one per tensor is non-zero.
      for (const [name, p] of m.namedParameters().slice(0, 8)) {
        const g = await p.grad!.data();
        expect(g.every(Number.isFinite), name).toBe(true);
      }
      m.dispose();
    });
  }

  test('clear errors for bad configurations and inputs', () => {
    expect(() => new UNet2D({ sampleSize: 30, blockOutChannels: [8, 16, 16], normNumGroups: 8 })).toThrow(/sampleSize 30 must be divisible by 2\^\(levels - 1\) = 4/);
    expect(() => new UNet2D({ sampleSize: 16, blockOutChannels: [12], normNumGroups: 8 })).toThrow(/channels 12 are not divisible by normNumGroups 8/);
    const m = new UNet2D({ sampleSize: 16, ...UNET_PRESETS.tiny, numClassEmbeds: 10, seed: 1 });
    expect(() => m.forward(T.zeros([2, 3, 16, 16]), 5, tensor(new Int32Array([1, 2])))).toThrow(/UNet2D: expected input \[B, 1, H, W\]/);
    expect(() => m.forward(T.zeros([2, 1, 16, 16]), 5)).toThrow(/class-conditional .* pass labels/);
    expect(() => m.forward(T.zeros([2, 1, 16, 16]), 5, tensor(new Int32Array([1])))).toThrow(/labels must have shape \[2\]/);
    m.dispose();
  });
});
