/**
 * `transfuse diffusion train|sample`: U-Nets on digits.
 *
 *   train   writes OUT/run.json (flags, for --resume), OUT/unet.json (architecture), numbered
 *           checkpoints in OUT/checkpoints/ during training, and at the end OUT/model.safetensors
 *           (the EMA weights when --ema is set) with its training state
 *   sample  a PNG grid from a finished run folder (one row per class if conditional), and with
 *           --score the W1 distance to test digits of the data set the model was trained on
 */
import { join, resolve } from 'node:path';
import { loadCheckpoint, readCheckpointExtra, saveCheckpoint } from '@transfuse/core/node';
import { CHECKPOINT_FLAGS, command, DATA_FLAG, DIGIT_CLASSES_FLAG, SEED_FLAG, UsageError } from '../cli/flags.js';
import { checkFinishedModel, checkpointsDir, runSettings, writeRunSettings } from '../cli/run-dir.js';
import { loadDigits, prepareDigits, resolveDataDir, type DigitDataset } from '../data/digits.js';
import { readJson, writeJson } from '../io/files.js';
import { savePngGrid } from '../io/png_file.js';
import { w1Gpu } from '../metrics/gpu.js';
import { NoiseSchedule } from './schedule.js';
import { sampleImages, trainDiffusion } from './train.js';
import { UNet2D, UNET_PRESETS, type UNet2DConfig } from './unet.js';

const DATASETS = ['mnist', 'usps'] as const;

export const diffusionTrain = command({
  synopsis: 'transfuse diffusion train [options]: train a U-Net on digits, with checkpoints; --resume continues a stopped run',
  flags: {
    data: DATA_FLAG,
    out: { type: 'string', default: 'results/diffusion', help: 'run folder' },
    dataset: { type: 'choice', values: DATASETS, default: 'mnist', help: 'training digits' },
    size: { type: 'int', oneOf: [16, 28, 32], default: 16, help: 'resolution' },
    preset: { type: 'choice', values: Object.keys(UNET_PRESETS), default: 'tiny', help: 'U-Net size' },
    conditional: { type: 'bool', help: 'class-conditional U-Net' },
    steps: { type: 'int', min: 1, default: 1000, help: 'optimizer steps' },
    batch: { type: 'int', min: 1, max: 4096, default: 64, help: 'batch size' },
    lr: { type: 'number', min: 0, above: true, max: 1, default: 2e-3, help: 'peak learning rate' },
    ema: { type: 'number', min: 0, max: 1, below: true, default: 0, help: 'EMA decay of the weights (0: none)' },
    n: { type: 'int', min: 1, help: 'train on a stratified subsample of N digits' },
    classes: DIGIT_CLASSES_FLAG,
    seed: SEED_FLAG,
    ...CHECKPOINT_FLAGS,
  },
  async run(v, { log, gpu }) {
    const cmd = 'diffusion train';
    const out = resolve(v.out);
    const current = { dataset: v.dataset, size: v.size, preset: v.preset, conditional: v.conditional, steps: v.steps, batch: v.batch, lr: v.lr, ema: v.ema, n: v.n ?? null, classes: v.classes ?? null, seed: v.seed };
    const { settings: s, resuming } = runSettings(cmd, out, v.resume, current, v.given);
    const raw = loadDigits(resolveDataDir(v.data), s.dataset as DigitDataset, 'train');
    const data = prepareDigits(raw, null, { size: s.size, classes: s.classes ?? undefined, n: s.n ?? undefined, seed: s.seed });
    if (data.n === 0) throw new UsageError(`${cmd}: --classes ${s.classes?.join(',')} leaves no ${s.dataset} digits`);
    const config: UNet2DConfig = { sampleSize: s.size, ...UNET_PRESETS[s.preset as keyof typeof UNET_PRESETS], numClassEmbeds: s.conditional ? 10 : undefined, seed: s.seed };
    if (!resuming) {
      writeRunSettings(cmd, out, s);
      // The architecture, so `diffusion sample` can rebuild the model before loading its weights.
      writeJson(join(out, 'unet.json'), config);
    }
    await gpu();
    const model = new UNet2D(config);
    log(`training ${s.preset} U-Net (${model.parameters().reduce((t, p) => t + p.size, 0)} parameters) on ${data.n} ${s.dataset} digits at ${s.size}x${s.size}`);
    const r = await trainDiffusion(model, new NoiseSchedule(), data, {
      steps: s.steps,
      batchSize: s.batch,
      lr: s.lr,
      emaDecay: s.ema,
      seed: s.seed,
      warmup: Math.floor(Math.min(100, s.steps / 10)),
      checkpoint: { dir: checkpointsDir(out), every: v['checkpoint-every'], keep: v.keep, resume: resuming },
    });
    if (r.interrupted) {
      log(`stopped at step ${r.steps} of ${s.steps}; checkpoint saved in ${checkpointsDir(out)}. Continue with: transfuse diffusion train --out ${v.out} --resume`);
      return;
    }
    r.ema?.copyTo(model);
    await saveCheckpoint(out, { model, step: s.steps, extra: { dataset: s.dataset, classes: s.classes, losses: r.losses } });
    log(`saved ${out} (${r.seconds.toFixed(0)} s, final loss ${r.losses.at(-1)?.[1].toFixed(4)})`);
  },
});

export const diffusionSample = command({
  synopsis: 'transfuse diffusion sample --checkpoint DIR [options]: a PNG grid of samples (one row per class if conditional)',
  flags: {
    checkpoint: { type: 'string', required: true, help: "run folder written by 'diffusion train'" },
    n: { type: 'int', min: 1, max: 100_000, default: 100, help: 'number of samples' },
    sampler: { type: 'choice', values: ['ddim', 'ddpm'], default: 'ddim', help: 'reverse process' },
    'sampler-steps': { type: 'int', min: 1, max: 1000, default: 50, help: 'reverse steps' },
    png: { type: 'string', help: 'output PNG (default: CHECKPOINT/samples.png)' },
    score: { type: 'bool', help: 'also print W1 to n test digits with the same labels' },
    dataset: { type: 'choice', values: DATASETS, help: "test digits for --score (default: the model's training set)" },
    classes: { ...DIGIT_CLASSES_FLAG, help: 'classes to sample (conditional) and score against' },
    data: DATA_FLAG,
    seed: SEED_FLAG,
  },
  async run(v, { log, gpu }) {
    const cmd = 'diffusion sample';
    const dir = resolve(v.checkpoint);
    checkFinishedModel(cmd, dir, 'unet.json', 'diffusion train');
    const config = readJson<UNet2DConfig>(join(dir, 'unet.json'));
    const saved = readCheckpointExtra(dir).extra as { dataset?: DigitDataset; classes?: number[] | null } | undefined;
    const dataset: DigitDataset = (v.dataset as DigitDataset | undefined) ?? saved?.dataset ?? 'mnist';
    const classes = v.classes ?? saved?.classes ?? undefined;
    if ((v.dataset || v.classes) && !v.score && !(v.classes && config.numClassEmbeds)) {
      throw new UsageError(`${cmd}: --${v.dataset ? 'dataset' : 'classes'} applies with --score${v.classes ? ' or to a conditional model' : ''}`);
    }
    const s = config.sampleSize;
    // Test digits with the same label counts as the samples, at the model's resolution (CPU work first).
    const test = v.score ? prepareDigits(loadDigits(resolveDataDir(v.data), dataset, 'test'), null, { size: s, seed: v.seed, classes }) : null;
    const pool = classes ?? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const labels = config.numClassEmbeds ? Int32Array.from({ length: v.n }, (_, i) => pool[Math.floor((i * pool.length) / v.n) % pool.length]) : undefined;
    const rows: number[] = [];
    if (test) {
      const used = new Set<number>();
      for (let i = 0; i < v.n; i++) {
        const want = labels ? labels[i] : -1;
        const r = test.labels!.findIndex((l, k) => !used.has(k) && (want < 0 || l === want));
        if (r < 0) throw new UsageError(`${cmd}: --score needs ${v.n} ${dataset} test digits${want >= 0 ? ` with label ${want}` : ''}; lower --n`);
        used.add(r);
        rows.push(r);
      }
    }
    await gpu();
    const model = new UNet2D(config);
    loadCheckpoint(dir, { model });
    model.eval();
    const images = await sampleImages(model, new NoiseSchedule(), { n: v.n, labels }, { sampler: v.sampler as 'ddim' | 'ddpm', steps: v['sampler-steps'], seed: v.seed, label: 'sample' });
    const png = resolve(v.png ?? join(dir, 'samples.png'));
    savePngGrid(png, images, v.n, s, s, 10);
    log(`wrote ${png}${labels ? ' (one row per class)' : ''}`);
    if (test) {
      const d = s * s;
      const real = new Float32Array(v.n * d);
      rows.forEach((r, i) => real.set(test.images.subarray(r * d, (r + 1) * d), i * d));
      const w1 = (await w1Gpu(images, real, v.n, v.n, d)) / 2;
      process.stdout.write(`W1 to ${v.n} ${dataset} test digits (pixels in [0, 1], ${s}x${s}): ${w1.toFixed(4)}\n`);
    }
  },
});
