/**
 * `transfuse flow train|sample|eval`: coupling flows on 16x16 digits (dequantized, logit space).
 *
 *   train   writes OUT/run.json (flags, for --resume), OUT/flow.json (config), numbered checkpoints
 *           in OUT/checkpoints/ during training, and at the end OUT/model.safetensors (+ training
 *           state), OUT/log.json (losses, train/test bits/dim) and OUT/samples.png (one row per
 *           class if conditional)
 *   sample  a PNG grid from a finished run folder
 *   eval    bits/dim of a split, by default of the data set the flow was trained on
 *
 * USPS uses the benchmark split (uspsBenchmarkSplit, seed 0): train on its 5,103 training digits,
 * test on its 2,188 held-out ones; MNIST uses its own train/test files.
 */
import { join, resolve } from 'node:path';
import { deriveSeed } from '@transfuse/core';
import { loadCheckpoint, readCheckpointExtra, saveCheckpoint } from '@transfuse/core/node';
import { CHECKPOINT_FLAGS, command, DATA_FLAG, SEED_FLAG, UsageError } from '../cli/flags.js';
import { checkFinishedModel, checkpointsDir, runSettings, writeRunSettings } from '../cli/run-dir.js';
import { loadDigits, prepareDigits, resolveDataDir, uspsBenchmarkSplit, type DigitDataset } from '../data/digits.js';
import { readJson, writeJson } from '../io/files.js';
import { savePngGrid } from '../io/png_file.js';
import { Flow, type FlowConfig } from './flow.js';
import { FLOW_PRESETS, flowPreset } from './presets.js';
import { evalBitsPerDim, imageFlowData, sampleFlow, trainFlow, type FlowData } from './train.js';

const SIZE = 16;
const DATASETS = ['mnist', 'usps'] as const;

/** The digits of one split as flow data (16x16, dequantized on use); labels only for a conditional flow. */
function digits(dataDir: string, dataset: DigitDataset, split: 'train' | 'test', n: number | undefined, seed: number, labels: boolean): FlowData {
  const set =
    dataset === 'usps'
      ? (() => {
          const s = uspsBenchmarkSplit(dataDir, 0);
          return prepareDigits(s.raw, split === 'train' ? s.train : s.test, { size: SIZE, n, seed });
        })()
      : prepareDigits(loadDigits(dataDir, dataset, split), null, { size: SIZE, n, seed });
  const data = imageFlowData(set);
  return labels ? data : { ...data, labels: null };
}

/** Labels 0..9 in equal consecutive runs, so a 10-column grid shows one class per row. */
const gridLabels = (n: number) => Int32Array.from({ length: n }, (_, i) => Math.floor((i * 10) / n) % 10);

async function samplePng(flow: Flow, n: number, seed: number, png: string): Promise<void> {
  const labels = flow.config.condition ? gridLabels(n) : undefined;
  savePngGrid(png, await sampleFlow(flow, n, { seed, labels }), n, SIZE, SIZE, 10);
}

function loadFlow(dir: string): Flow {
  const flow = new Flow(readJson<FlowConfig>(join(dir, 'flow.json')));
  loadCheckpoint(dir, { model: flow });
  flow.eval();
  return flow;
}

export const flowTrain = command({
  synopsis: 'transfuse flow train [options]: train a coupling flow on 16x16 digits, with checkpoints; --resume continues a stopped run',
  flags: {
    data: DATA_FLAG,
    out: { type: 'string', help: 'run folder (default: results/flow-PRESET-DATASET)' },
    dataset: { type: 'choice', values: DATASETS, default: 'usps', help: 'training digits' },
    preset: { type: 'choice', values: Object.keys(FLOW_PRESETS), help: 'architecture (default: small, or small-cond with --conditional)' },
    conditional: { type: 'bool', help: 'class-conditional flow (needs a conditional preset)' },
    steps: { type: 'int', min: 1, default: 2000, help: 'optimizer steps' },
    batch: { type: 'int', min: 1, max: 4096, default: 64, help: 'batch size' },
    lr: { type: 'number', min: 0, above: true, max: 1, default: 1e-3, help: 'peak learning rate' },
    n: { type: 'int', min: 1, help: 'train on a stratified subsample of N digits' },
    alpha: { type: 'number', min: 0, max: 0.5, below: true, default: 1e-6, help: 'logit transform margin' },
    'eval-n': { type: 'int', min: 1, max: 2000, default: 2000, help: 'test digits for the final bits/dim' },
    seed: SEED_FLAG,
    ...CHECKPOINT_FLAGS,
  },
  async run(v, { log, gpu }) {
    const cmd = 'flow train';
    const preset = v.preset ?? (v.conditional ? 'small-cond' : 'small');
    const current = { dataset: v.dataset, preset, conditional: v.conditional, steps: v.steps, batch: v.batch, lr: v.lr, n: v.n ?? null, alpha: v.alpha, evalN: v['eval-n'], seed: v.seed };
    const out = resolve(v.out ?? join('results', `flow-${preset}-${v.dataset}`));
    const { settings: s, resuming } = runSettings(cmd, out, v.resume, current, v.given);
    const config = flowPreset(s.preset, { dim: SIZE * SIZE, logitAlpha: s.alpha, seed: s.seed, image: { channels: 1, height: SIZE, width: SIZE } });
    if (s.conditional !== !!config.condition) {
      throw new UsageError(
        `${cmd}: --preset ${s.preset} is ${config.condition ? 'conditional; pass --conditional' : 'unconditional; use realnvp-cond, realnvp-cond-emb or small-cond with --conditional'}`,
      );
    }
    const dataDir = resolveDataDir(v.data);
    const train = digits(dataDir, s.dataset as DigitDataset, 'train', s.n ?? undefined, s.seed, s.conditional);
    const test = digits(dataDir, s.dataset as DigitDataset, 'test', s.evalN, s.seed, s.conditional);
    if (!resuming) {
      writeRunSettings(cmd, out, s);
      // The architecture, so sample/eval can rebuild the flow before loading its weights.
      writeJson(join(out, 'flow.json'), config);
    }
    await gpu();
    const flow = new Flow(config);
    log(`training flow '${s.preset}' (${flow.numParameters()} parameters) on ${train.n} ${s.dataset} digits at ${SIZE}x${SIZE}`);
    const r = await trainFlow(flow, train, {
      steps: s.steps,
      batchSize: s.batch,
      lr: s.lr,
      seed: deriveSeed(s.seed, 1),
      warmup: Math.min(100, Math.floor(s.steps / 10)),
      clipNorm: 100,
      label: 'flow train',
      checkpoint: { dir: checkpointsDir(out), every: v['checkpoint-every'], keep: v.keep, resume: resuming },
    });
    if (r.interrupted) {
      log(`stopped at step ${r.steps} of ${s.steps}; checkpoint saved in ${checkpointsDir(out)}. Continue with: transfuse flow train --out ${v.out ?? out} --resume`);
      flow.dispose();
      return;
    }
    const nTrain = Math.min(train.n, 2000);
    const trainEval = await evalBitsPerDim(flow, { ...train, n: nTrain, x: train.x.subarray(0, nTrain * train.dim), labels: train.labels?.subarray(0, nTrain) }, { seed: deriveSeed(s.seed, 2), label: 'eval train' });
    const testEval = await evalBitsPerDim(flow, test, { seed: deriveSeed(s.seed, 3), label: 'eval test' });
    writeJson(join(out, 'log.json'), { dataset: s.dataset, preset: s.preset, steps: s.steps, seconds: r.seconds, losses: r.losses, trainBitsPerDim: trainEval.bitsPerDim, testBitsPerDim: testEval.bitsPerDim, testN: test.n });
    await samplePng(flow, 100, deriveSeed(s.seed, 4), join(out, 'samples.png'));
    await saveCheckpoint(out, { model: flow, step: s.steps, extra: { dataset: s.dataset, preset: s.preset } });
    log(`saved ${out} (${r.seconds.toFixed(0)} s): train ${trainEval.bitsPerDim.toFixed(3)} bits/dim, test ${testEval.bitsPerDim.toFixed(3)} bits/dim on ${test.n} ${s.dataset} test digits`);
    flow.dispose();
  },
});

export const flowSample = command({
  synopsis: 'transfuse flow sample --checkpoint DIR [options]: a PNG grid of samples (one row per class if conditional)',
  flags: {
    checkpoint: { type: 'string', required: true, help: "run folder written by 'flow train'" },
    n: { type: 'int', min: 1, max: 100_000, default: 100, help: 'number of samples' },
    png: { type: 'string', help: 'output PNG (default: CHECKPOINT/samples.png)' },
    seed: SEED_FLAG,
  },
  async run(v, { log, gpu }) {
    const dir = resolve(v.checkpoint);
    checkFinishedModel('flow sample', dir, 'flow.json', 'flow train');
    await gpu();
    const flow = loadFlow(dir);
    const png = resolve(v.png ?? join(dir, 'samples.png'));
    await samplePng(flow, v.n, v.seed, png);
    log(`wrote ${png}${flow.config.condition ? ' (one row per class)' : ''}`);
    flow.dispose();
  },
});

export const flowEval = command({
  synopsis: 'transfuse flow eval --checkpoint DIR [options]: bits/dim of a split (prints one JSON line)',
  flags: {
    checkpoint: { type: 'string', required: true, help: "run folder written by 'flow train'" },
    dataset: { type: 'choice', values: DATASETS, help: "digits to score (default: the flow's training set)" },
    split: { type: 'choice', values: ['train', 'test'], default: 'test', help: 'which split' },
    n: { type: 'int', min: 1, help: 'score a stratified subsample of N digits' },
    data: DATA_FLAG,
    seed: SEED_FLAG,
  },
  async run(v, { gpu }) {
    const dir = resolve(v.checkpoint);
    checkFinishedModel('flow eval', dir, 'flow.json', 'flow train');
    const config = readJson<FlowConfig>(join(dir, 'flow.json'));
    const dataset = (v.dataset ?? (readCheckpointExtra(dir).extra as { dataset?: DigitDataset } | undefined)?.dataset ?? 'usps') as DigitDataset;
    const data = digits(resolveDataDir(v.data), dataset, v.split as 'train' | 'test', v.n, v.seed, !!config.condition);
    await gpu();
    const flow = loadFlow(dir);
    const e = await evalBitsPerDim(flow, data, { seed: v.seed, label: 'eval' });
    process.stdout.write(`${JSON.stringify({ dataset, split: v.split, n: data.n, ...e })}\n`);
    flow.dispose();
  },
});
