/**
 * Unknown option keys are refused, naming the key and listing the known ones, in the models'
 * trainers, samplers and model configs (a misspelt key would otherwise be silently ignored).
 */
import { describe, expect, test } from 'vitest';
import {
  ConditionEncoder,
  evalBitsPerDim,
  fineTuneHead,
  Flow,
  MlpScoreNet,
  NoiseSchedule,
  posteriorMean,
  pretrainMultiSource,
  sampleConditional,
  sampleFlow,
  sampleImages,
  trainConditional,
  trainDiffusion,
  trainFlow,
  UNet2D,
  UNET_PRESETS,
} from '../src/index.js';
import { tensor } from '@transfuse/core';
import { useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

describe('unknown option keys throw, listing the known ones', () => {
  test('model configs', () => {
    expect(() => new UNet2D({ sampleSize: 8, ...UNET_PRESETS.tiny, numClasses: 10 } as never)).toThrow(/UNet2D: unknown option 'numClasses' \(known: sampleSize, .*numClassEmbeds, seed\)/);
    expect(() => new Flow({ dim: 2, coupling: 'affine', layers: 1, hidden: [4], scale_bound: 2 } as never)).toThrow(/Flow: unknown option 'scale_bound' \(known: dim, coupling, .*scaleBound/);
    expect(() => new NoiseSchedule({ beta_start: 1e-4 } as never)).toThrow(/NoiseSchedule: unknown option 'beta_start' \(known: steps, schedule, betaStart, betaEnd\)/);
    expect(() => new MlpScoreNet({ dataDim: 2, condDim: 2, hidden: 4, tMax: 5, width: 3 } as never)).toThrow(/MlpScoreNet: unknown option 'width'/);
    expect(() => new ConditionEncoder({ inFeatures: 2, outFeatures: 2, hidden: 4, layers: 3 } as never)).toThrow(/ConditionEncoder: unknown option 'layers' \(known: inFeatures, outFeatures, hidden, depth, activation, output, seed\)/);
  });

  test('trainers, samplers and evaluation', async () => {
    const unet = new UNet2D({ sampleSize: 8, ...UNET_PRESETS.tiny, seed: 1 });
    const images = { images: new Float32Array(2 * 64), n: 2, channels: 1, height: 8, width: 8, labels: null };
    await expect(trainDiffusion(unet, new NoiseSchedule(), images, { steps: 1, batchSize: 2, lr: 1e-3, epochs: 3 } as never)).rejects.toThrow(/trainDiffusion: unknown option 'epochs'/);
    await expect(sampleImages(unet, new NoiseSchedule(), { n: 1 }, { num_inference_steps: 5 } as never)).rejects.toThrow(/sampleImages: unknown option 'num_inference_steps' \(known: sampler, steps, eta, clipSample, prediction, seed, batchSize, label\)/);
    const flow = new Flow({ dim: 2, coupling: 'affine', layers: 1, hidden: [4], seed: 1 });
    const data = { x: new Float32Array(4), n: 2, dim: 2 };
    await expect(trainFlow(flow, data, { steps: 1, batchSize: 2, lr: 1e-3, clip: 1 } as never)).rejects.toThrow(/trainFlow: unknown option 'clip'/);
    await expect(evalBitsPerDim(flow, data, { bs: 2 } as never)).rejects.toThrow(/evalBitsPerDim: unknown option 'bs' \(known: batchSize, seed, label\)/);
    await expect(sampleFlow(flow, 2, { temperature: 0.7 } as never)).rejects.toThrow(/sampleFlow: unknown option 'temperature' \(known: seed, labels, task, batchSize, images\)/);

    const head = new MlpScoreNet({ dataDim: 2, condDim: 3, hidden: 4, tMax: 5, seed: 1 });
    const encoder = new ConditionEncoder({ inFeatures: 2, outFeatures: 3, hidden: 4, seed: 2 });
    const task = { x: new Float32Array(4), y: new Float32Array(4), n: 2 };
    const train = { steps: 1, batchSize: 2, lr: 1e-3 };
    await expect(trainConditional([task], [head], encoder, { ...train, epochs: 2 } as never)).rejects.toThrow(/trainConditional: unknown option 'epochs' \(known: tMin, tMax, steps, batchSize, lr, .*checkpoint\)/);
    await expect(pretrainMultiSource([task], { ...train, heads: [head], encoder, head } as never)).rejects.toThrow(/pretrainMultiSource: unknown option 'head' \(known: .*heads, encoder\)/);
    await expect(fineTuneHead(encoder, head, task, { ...train, heads: [head] } as never)).rejects.toThrow(/fineTuneHead: unknown option 'heads'/);
    expect(encoder.trainableParameters().length).toBeGreaterThan(0); // refused before it froze the encoder
    const w = tensor(new Float32Array(3), [1, 3]);
    expect(() => sampleConditional(head, w, { samples: 4 } as never)).toThrow(/sampleConditional: unknown option 'samples' \(known: tMin, tMax, steps, eta, clip, seed\)/);
    await expect(posteriorMean(head, encoder, new Float32Array(2), 1, { sample: 4 } as never)).rejects.toThrow(/posteriorMean: unknown option 'sample' \(known: .*samples, batchSize\)/);
    for (const m of [unet, flow, head, encoder, w]) m.dispose();
  });
});
