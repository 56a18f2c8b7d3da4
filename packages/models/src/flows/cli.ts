/**
 * `transfuse flow train|sample|eval`: coupling flows on 16x16 digits (dequantized, logit space).
 *
 *   train   --dataset mnist|usps --preset P [--conditional] --steps N --lr X --batch N --n N --out DIR
 *           writes DIR/model.safetensors (+ training state), DIR/flow.json (config), DIR/log.json
 *           (losses, train/test bits/dim) and DIR/samples.png (one row per class if conditional)
 *   sample  --checkpoint DIR [--n N] [--png FILE]
 *   eval    --checkpoint DIR [--dataset D] [--split train|test] [--n N]
 *
 * USPS uses the benchmark split (uspsBenchmarkSplit, seed 0): train on its 5,103 training digits,
 * test on its 2,188 held-out ones; MNIST uses its own train/test files.
 */
import { join, resolve } from 'node:path';
import { deriveSeed, loadCheckpoint, saveCheckpoint } from '@transfuse/core';
import { loadDigits, prepareDigits, resolveDataDir, uspsBenchmarkSplit, type DigitDataset } from '../data/digits.js';
import { readJson, writeJson } from '../io/files.js';
import { savePngGrid } from '../io/png.js';
import { Flow, type FlowConfig } from './flow.js';
import { flowPreset } from './presets.js';
import { evalBitsPerDim, imageFlowData, sampleFlow, trainFlow, type FlowData } from './train.js';

export type FlowCliArgs = Record<string, string | boolean | undefined>;

const SIZE = 16;

function num(args: FlowCliArgs, name: string, fallback: number): number {
  const v = args[name];
  if (v === undefined) return fallback;
  const x = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(x)) throw new Error(`flow: --${name} must be a number, got '${String(v)}'`);
  return x;
}

function str(args: FlowCliArgs, name: string, fallback?: string): string {
  const v = args[name];
  if (v === undefined || v === false) {
    if (fallback === undefined) throw new Error(`flow: --${name} is required`);
    return fallback;
  }
  if (typeof v !== 'string') throw new Error(`flow: --${name} needs a value`);
  return v;
}

/** The digits of one split as flow data (16x16, dequantized on use). */
function digits(dataDir: string, dataset: string, split: 'train' | 'test', n: number | undefined, seed: number): FlowData {
  if (dataset !== 'mnist' && dataset !== 'usps') throw new Error(`flow: --dataset must be mnist or usps, got '${dataset}'`);
  if (dataset === 'usps') {
    const s = uspsBenchmarkSplit(dataDir, 0);
    return imageFlowData(prepareDigits(s.raw, split === 'train' ? s.train : s.test, { size: SIZE, n, seed }));
  }
  return imageFlowData(prepareDigits(loadDigits(dataDir, dataset as DigitDataset, split), null, { size: SIZE, n, seed }));
}

function loadFlow(dir: string): Flow {
  const flow = new Flow(readJson<FlowConfig>(join(dir, 'flow.json')));
  loadCheckpoint(dir, { model: flow });
  flow.eval();
  return flow;
}

/** Labels 0..9 in equal consecutive runs, so a 10-column grid shows one class per row. */
const gridLabels = (n: number) => Int32Array.from({ length: n }, (_, i) => Math.floor((i * 10) / n) % 10);

async function samplePng(flow: Flow, n: number, seed: number, png: string): Promise<void> {
  const labels = flow.config.condition ? gridLabels(n) : undefined;
  savePngGrid(png, await sampleFlow(flow, n, { seed, labels }), n, SIZE, SIZE, 10);
}

export async function flowCli(sub: 'train' | 'sample' | 'eval', args: FlowCliArgs, log: (msg: string) => void): Promise<void> {
  const seed = num(args, 'seed', 0);
  if (sub === 'train') {
    const dataDir = resolveDataDir(args.data as string | undefined);
    const dataset = str(args, 'dataset', 'usps');
    const conditional = args.conditional === true;
    const preset = str(args, 'preset', conditional ? 'small-cond' : 'small');
    const config = flowPreset(preset, { dim: SIZE * SIZE, logitAlpha: num(args, 'alpha', 1e-6), seed, image: { channels: 1, height: SIZE, width: SIZE } });
    if (conditional !== !!config.condition) {
      throw new Error(`flow: preset '${preset}' is ${config.condition ? 'conditional; pass --conditional' : 'unconditional; use realnvp-cond, realnvp-cond-emb or small-cond with --conditional'}`);
    }
    const n = args.n === undefined ? undefined : num(args, 'n', 0);
    const train = digits(dataDir, dataset, 'train', n, seed);
    const test = digits(dataDir, dataset, 'test', Math.min(2000, num(args, 'eval-n', 2000)), seed);
    const flow = new Flow(config);
    const out = resolve(str(args, 'out', join('results', `flow-${preset}-${dataset}`)));
    const steps = num(args, 'steps', 2000);
    log(`training flow '${preset}' (${flow.numParameters()} parameters) on ${train.n} ${dataset} digits at ${SIZE}x${SIZE}`);
    const r = await trainFlow(flow, train, { steps, batchSize: num(args, 'batch', 64), lr: num(args, 'lr', 1e-3), seed: deriveSeed(seed, 1), warmup: Math.min(100, Math.floor(steps / 10)), clipNorm: 100, label: 'flow train' });
    const trainEval = await evalBitsPerDim(flow, { ...train, n: Math.min(train.n, 2000), x: train.x.subarray(0, Math.min(train.n, 2000) * train.dim) }, { seed: deriveSeed(seed, 2) });
    const testEval = await evalBitsPerDim(flow, test, { seed: deriveSeed(seed, 3) });
    await saveCheckpoint(out, { model: flow, step: steps, extra: { dataset, preset } });
    // The architecture, so sample/eval can rebuild the flow before loading its weights.
    writeJson(join(out, 'flow.json'), config);
    writeJson(join(out, 'log.json'), { dataset, preset, steps, seconds: r.seconds, losses: r.losses, trainBitsPerDim: trainEval.bitsPerDim, testBitsPerDim: testEval.bitsPerDim, testN: test.n });
    await samplePng(flow, 100, deriveSeed(seed, 4), join(out, 'samples.png'));
    log(`saved ${out} (${r.seconds.toFixed(0)} s): train ${trainEval.bitsPerDim.toFixed(3)} bits/dim, test ${testEval.bitsPerDim.toFixed(3)} bits/dim on ${test.n} ${dataset} test digits`);
    flow.dispose();
    return;
  }
  const dir = str(args, 'checkpoint');
  const flow = loadFlow(dir);
  if (sub === 'sample') {
    const png = resolve(str(args, 'png', join(dir, 'samples.png')));
    await samplePng(flow, num(args, 'n', 100), seed, png);
    log(`wrote ${png}${flow.config.condition ? ' (one row per class)' : ''}`);
  } else if (sub === 'eval') {
    const saved = readJson<{ dataset: string }>(join(dir, 'log.json'));
    const dataset = str(args, 'dataset', saved.dataset);
    const split = str(args, 'split', 'test');
    if (split !== 'train' && split !== 'test') throw new Error(`flow: --split must be train or test, got '${split}'`);
    const data = digits(resolveDataDir(args.data as string | undefined), dataset, split, args.n === undefined ? undefined : num(args, 'n', 0), seed);
    const e = await evalBitsPerDim(flow, data, { seed });
    process.stdout.write(`${JSON.stringify({ dataset, split, n: data.n, ...e })}\n`);
  } else {
    throw new Error(`flow: unknown subcommand '${sub as string}' (use train, sample, eval)`);
  }
  flow.dispose();
}
