#!/usr/bin/env node
/**
 * The `transfuse` command line: `demo`, `experiment NAME`, `diffusion train|sample`, `flow ...`.
 * Every command runs on the adapter init() finds (TRANSFUSE_BACKEND forces one).
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { init, loadCheckpoint, runtime, saveCheckpoint, shutdown } from '@transfuse/core';
import { loadDigits, prepareDigits, resolveDataDir, type DigitDataset } from './data/digits.js';
import { NoiseSchedule } from './diffusion/schedule.js';
import { sampleImages, trainDiffusion } from './diffusion/train.js';
import { UNet2D, UNET_PRESETS, type UNet2DConfig } from './diffusion/unet.js';
import { EXPERIMENTS, runExperiment } from './experiments/index.js';
import type { Family } from './experiments/mnist-usps.js';
import { flowCli } from './flows/cli.js';
import { transferCli } from './experiments/transfer-cli.js';
import { readJson, writeJson } from './io/files.js';
import { savePngGrid } from './io/png.js';
import { w1Gpu } from './metrics/gpu.js';

const USAGE = `transfuse <command> [options]

  demo                               MNIST -> USPS conditional diffusion transfer, compact (<= 15 min on 2 CPU cores)
  experiment NAME --preset P         run an experiment (${Object.keys(EXPERIMENTS).join(', ')})
                                     presets: smoke (CI, minutes), cpu (hours on 2 cores), paper (GPU scale)
                                     mnist-usps only: --ns 100,300 (source sizes)  --families diffusion,flow
  transfer --source S --target T     the transfer experiment on your own image sets (transfuse transfer --help)
  diffusion train                    train a U-Net on digits and save a checkpoint
  diffusion sample                   sample a PNG grid from a checkpoint
  flow train|sample|eval             coupling flows on digits (bits/dim, sample grids)

Common options:
  --data DIR      folder with mnist/ and usps/ (default: $TRANSFUSE_DATA, else ../shared/data)
  --out DIR       results or checkpoint folder
  --seed N

diffusion train options:
  --dataset mnist|usps   --size 16|28|32   --preset tiny|small|paper   --conditional
  --steps N   --batch N   --lr X   --ema DECAY   --n N (subsample)   --classes 3,5
diffusion sample options:
  --checkpoint DIR   --n N   --sampler ddim|ddpm   --sampler-steps N   --png FILE
  --score --dataset mnist|usps [--classes 3]   also print W1 to n test digits with the same labels
flow options:
  train: --dataset mnist|usps --preset small|small-cond|realnvp|nice|realnvp-cond|realnvp-cond-emb|three-layer
         [--conditional] --steps N --lr X --batch N --n N --alpha X --eval-n N --out DIR
  sample: --checkpoint DIR --n N --png FILE      eval: --checkpoint DIR --split train|test
`;

function fail(msg: string): never {
  process.stderr.write(`transfuse: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

const log = (m: string) => process.stderr.write(`${m}\n`);

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'transfer') return init().then(() => transferCli(argv.slice(1), log));
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string', default: '0' },
      preset: { type: 'string' },
      dataset: { type: 'string', default: 'mnist' },
      size: { type: 'string', default: '16' },
      conditional: { type: 'boolean', default: false },
      steps: { type: 'string', default: '1000' },
      batch: { type: 'string', default: '64' },
      lr: { type: 'string', default: '2e-3' },
      ema: { type: 'string', default: '0' },
      n: { type: 'string' },
      classes: { type: 'string' },
      checkpoint: { type: 'string' },
      sampler: { type: 'string', default: 'ddim' },
      'sampler-steps': { type: 'string', default: '50' },
      png: { type: 'string' },
      score: { type: 'boolean', default: false },
      alpha: { type: 'string' },
      'eval-n': { type: 'string' },
      split: { type: 'string' },
      ns: { type: 'string' },
      families: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, sub] = positionals;
  if (v.help || !command) {
    process.stdout.write(USAGE);
    return;
  }
  const num = (name: string, s: string | undefined): number => {
    const x = Number(s);
    if (s === undefined || !Number.isFinite(x)) fail(`--${name} must be a number, got '${s}'`);
    return x;
  };
  const seed = num('seed', v.seed);
  await init();
  log(`transfuse: WebGPU adapter ${runtime().acquired.backend}`);

  if (command === 'demo' || command === 'experiment') {
    const name = command === 'demo' ? 'mnist-usps-conditional' : sub;
    if (!name || !(name in EXPERIMENTS)) fail(`unknown experiment '${name ?? ''}'`);
    const preset = command === 'demo' ? 'demo' : (v.preset ?? fail('--preset smoke|cpu|paper is required'));
    const out = resolve(v.out ?? join('results', command === 'demo' ? 'demo' : `${name}-${preset}`));
    const started = performance.now();
    const ns = v.ns?.split(',').map((s) => num('ns', s));
    const families = v.families?.split(',') as Family[] | undefined;
    const report = await runExperiment(name, { preset, dataDir: resolveDataDir(v.data), out, log, ns, families });
    process.stdout.write(`\n${report}\n`);
    log(`Results, sample grids and plots in ${out} (${((performance.now() - started) / 60000).toFixed(1)} min)`);
    return;
  }

  if (command === 'diffusion' && sub === 'train') {
    const dataDir = resolveDataDir(v.data);
    const size = num('size', v.size);
    const classes = v.classes?.split(',').map((c) => num('classes', c));
    const raw = loadDigits(dataDir, v.dataset as DigitDataset, 'train');
    const data = prepareDigits(raw, null, { size, classes, n: v.n ? num('n', v.n) : undefined, seed });
    const preset = (v.preset ?? 'tiny') as keyof typeof UNET_PRESETS;
    if (!(preset in UNET_PRESETS)) fail(`unknown U-Net preset '${preset}'`);
    const config: UNet2DConfig = { sampleSize: size, ...UNET_PRESETS[preset], numClassEmbeds: v.conditional ? 10 : undefined, seed };
    const model = new UNet2D(config);
    const out = resolve(v.out ?? join('results', 'diffusion'));
    log(`training ${preset} U-Net (${model.parameters().reduce((s, p) => s + p.size, 0)} parameters) on ${data.n} ${v.dataset} digits at ${size}x${size}`);
    const steps = num('steps', v.steps);
    const r = await trainDiffusion(model, new NoiseSchedule(), data, { steps, batchSize: num('batch', v.batch), lr: num('lr', v.lr), emaDecay: num('ema', v.ema), seed, warmup: Math.floor(Math.min(100, steps / 10)) });
    r.ema?.copyTo(model);
    await saveCheckpoint(out, { model, step: steps, extra: { dataset: v.dataset, losses: r.losses } });
    // The architecture, so `diffusion sample` can rebuild the model before loading its weights.
    writeJson(join(out, 'unet.json'), config);
    log(`saved ${out} (${r.seconds.toFixed(0)} s, final loss ${r.losses.at(-1)?.[1].toFixed(4)})`);
    return;
  }

  if (command === 'diffusion' && sub === 'sample') {
    const dir = v.checkpoint ?? fail('--checkpoint DIR is required');
    const model = new UNet2D(readJson<UNet2DConfig>(join(dir, 'unet.json')));
    loadCheckpoint(dir, { model });
    model.eval();
    const n = v.n ? num('n', v.n) : 100;
    const labels = model.config.numClassEmbeds ? Int32Array.from({ length: n }, (_, i) => Math.floor((i * 10) / n) % 10) : undefined;
    const s = model.config.sampleSize;
    const images = await sampleImages(model, new NoiseSchedule(), { n, labels }, { sampler: v.sampler as 'ddim' | 'ddpm', steps: num('sampler-steps', v['sampler-steps']), seed });
    const png = resolve(v.png ?? join(dir, 'samples.png'));
    savePngGrid(png, images, n, s, s, 10);
    log(`wrote ${png}${labels ? ' (one row per class)' : ''}`);
    if (v.score) {
      // Test digits with the same label counts as the samples, at the model's resolution.
      const classes = v.classes?.split(',').map((c) => num('classes', c));
      const test = prepareDigits(loadDigits(resolveDataDir(v.data), v.dataset as DigitDataset, 'test'), null, { size: s, seed, classes });
      const rows: number[] = [];
      const used = new Set<number>();
      for (let i = 0; i < n; i++) {
        const want = labels ? labels[i] : -1;
        const r = test.labels!.findIndex((l, k) => !used.has(k) && (want < 0 || l === want));
        used.add(r);
        rows.push(r);
      }
      const d = s * s;
      const real = new Float32Array(n * d);
      rows.forEach((r, i) => real.set(test.images.subarray(r * d, (r + 1) * d), i * d));
      const w1 = (await w1Gpu(images, real, n, n, d)) / 2;
      process.stdout.write(`W1 to ${n} ${v.dataset} test digits (pixels in [0, 1], ${s}x${s}): ${w1.toFixed(4)}\n`);
    }
    return;
  }
  if (command === 'flow' && (sub === 'train' || sub === 'sample' || sub === 'eval')) {
    await flowCli(sub, v, log);
    return;
  }
  fail(`unknown command '${[command, sub].filter(Boolean).join(' ')}'`);
}

main(process.argv.slice(2))
  .then(() => {
    shutdown();
    // Dawn keeps the event loop alive; everything is written by now.
    process.exit(0);
  })
  .catch((e: Error) => {
    process.stderr.write(`transfuse: ${e.message}\n`);
    process.exit(1);
  });
