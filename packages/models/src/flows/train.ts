/**
 * Maximum-likelihood training, evaluation and sampling of flows on vector data held on the CPU.
 * Image data go through uniform dequantization of their 8-bit levels: y = (level + u) / 256 in
 * (0, 1), so with a logit flow the bits/dim count the discrete 8-bit data, as published numbers do.
 */
import { Adam, BestWeights, checkOptionKeys, clipGradNorm, cosineWithWarmup, deriveSeed, EMA, emaWarmupDecay, LossLog, noGrad, tensor, tidy, add, sum, trainingCheckpoints, ProgressBar, runtime, type CheckpointingOptions, type Module, type Tensor } from '@transfuse/core';
import { createRng, permutation } from '../data/prng.js';
import { epochBatches } from '../data/batches.js';
import type { ImageSet } from '../data/image-set.js';
import { bitsPerDimFromNats, type Flow, type FlowCondition } from './flow.js';

/** n rows of dim features, with optional labels and a task condition [n, taskDim]. */
export interface FlowData {
  x: Float32Array;
  n: number;
  dim: number;
  labels?: Int32Array | null;
  task?: Float32Array | null;
  /** x holds images in [-1, 1]; rows are dequantized to (0, 1) with fresh noise per use. */
  dequantize?: boolean;
}

/** Images in [-1, 1] as flow data (flattened, dequantized on use). */
export function imageFlowData(set: ImageSet): FlowData {
  return { x: set.images, n: set.n, dim: set.channels * set.height * set.width, labels: set.labels, dequantize: true };
}

/** [-1, 1] images → 8-bit levels round((v + 1)/2 · 255) → (level + u)/256, u ~ U[0, 1). */
export function dequantize(images: Float32Array, seed: number): Float32Array {
  const rng = createRng(seed);
  return images.map((v) => (Math.min(255, Math.max(0, Math.round(((v + 1) / 2) * 255))) + rng.next()) / 256);
}

/** The rows `indices` of `data`, in that order, as a new data set. */
export function selectRows(data: FlowData, indices: Int32Array): FlowData {
  const d = data.dim;
  const x = new Float32Array(indices.length * d);
  indices.forEach((r, i) => x.set(data.x.subarray(r * d, (r + 1) * d), i * d));
  const k = data.task ? data.task.length / data.n : 0;
  const task = data.task ? new Float32Array(indices.length * k) : null;
  if (task) indices.forEach((r, i) => task.set(data.task!.subarray(r * k, (r + 1) * k), i * k));
  return { x, n: indices.length, dim: d, labels: data.labels ? Int32Array.from(indices, (r) => data.labels![r]) : data.labels, task, dequantize: data.dequantize };
}

/** A seeded random split into training rows and round(fraction · n) validation rows (both non-empty). */
export function splitFlowData(data: FlowData, fraction: number, seed: number): { train: FlowData; validation: FlowData } {
  const nVal = Math.round(fraction * data.n);
  if (!(fraction > 0 && fraction < 1) || nVal < 1 || nVal >= data.n) {
    throw new Error(`splitFlowData: a validation fraction of ${fraction} of ${data.n} rows leaves ${data.n - nVal} to train on and ${nVal} to validate; both must be at least 1`);
  }
  const order = permutation(data.n, seed);
  return { train: selectRows(data, order.subarray(nVal)), validation: selectRows(data, order.subarray(0, nVal)) };
}

function condition(s: FlowData): FlowCondition | undefined {
  if (!s.labels) return undefined;
  const labels = tensor(s.labels);
  return s.task ? { labels, task: tensor(s.task, [s.n, s.task.length / s.n]) } : { labels };
}

function rows(data: FlowData, indices: Int32Array, seed: number): { x: Tensor; cond?: FlowCondition } {
  const s = selectRows(data, indices);
  return { x: tensor(s.dequantize ? dequantize(s.x, seed) : s.x, [s.n, s.dim]), cond: condition(s) };
}

export interface FlowTrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed?: number;
  /** Linear warmup steps, then a cosine decay to finalLrFraction · lr (defaults: 0 and 1, constant). */
  warmup?: number;
  finalLrFraction?: number;
  /** Clip the global gradient norm (default 0: off). */
  clipNorm?: number;
  /**
   * Largest decay of an exponential moving average of the weights, reached after a warmup (0
   * disables). With `validation`, the checks measure the averaged weights and the flow ends
   * holding those of the best check.
   */
  emaDecay?: number;
  /**
   * Set the flow's uninitialised ActNorm layers, before the first step, from `images` rows of the
   * data (a seeded sample, all rows if fewer) with each feature's variance shrunk toward its
   * layer's pooled variance with the weight of `prior` rows (Flow.initActNorm). Without it the
   * first batch sets them alone, which on a small data set ruins the flow before it trains.
   */
  actnormInit?: { images: number; prior: number };
  /** Read the loss back every this many steps (default 50). */
  logEvery?: number;
  /** Progress bar label; null for none. */
  label?: string | null;
  onLog?: (step: number, natsPerDim: number) => void;
  /**
   * Early stopping: held-out data whose NLL is measured every `validateEvery` steps (default
   * logEvery); the weights with the lowest one are restored at the end.
   */
  validation?: FlowData;
  validateEvery?: number;
  /** Measure the validation NLL before the first step too, so the starting weights (a transferred model untouched) can be the ones kept. */
  validateAtStart?: boolean;
  /** Stop after this many validation measurements without improvement (default: run all steps). */
  patience?: number;
  /** Numbered checkpoints during training (with the early-stopping state), resume, and save-and-stop on SIGINT/SIGTERM. */
  checkpoint?: CheckpointingOptions;
}

const FLOW_TRAIN_KEYS = ['steps', 'batchSize', 'lr', 'seed', 'warmup', 'finalLrFraction', 'clipNorm', 'emaDecay', 'actnormInit', 'logEvery', 'label', 'onLog', 'validation', 'validateEvery', 'validateAtStart', 'patience', 'checkpoint'];

export interface FlowValidation {
  /** (step, validation NLL in nats/dim) pairs. */
  history: [number, number][];
  /** The step whose weights were kept, and its validation NLL. */
  bestStep: number;
  best: number;
}

export interface FlowTrainResult {
  /** (step, training NLL in nats/dim) pairs, read every logEvery steps. */
  losses: [number, number][];
  seconds: number;
  /** Steps actually run (fewer than `steps` when early stopping or a signal ended training). */
  steps: number;
  /** The EMA of the weights, if one was kept (without validation, apply it with ema.copyTo(flow) before sampling); the caller disposes it. */
  ema: EMA | null;
  validation?: FlowValidation;
  /** A signal stopped training; the newest checkpoint holds the state to resume from. */
  interrupted: boolean;
}

function checkData(flow: Flow, data: FlowData, what: string): void {
  if (data.dim !== flow.dim) throw new Error(`${what}: the data have dim ${data.dim}, the flow ${flow.dim}`);
  if (data.x.length !== data.n * data.dim) throw new Error(`${what}: x holds ${data.x.length} values, expected n·dim = ${data.n}·${data.dim}`);
  if (!!flow.config.condition !== !!data.labels) throw new Error(`${what}: the flow is ${flow.config.condition ? 'conditional but the data have no labels' : 'unconditional but the data have labels'}`);
}

/** trainFlow's actnormInit, before the EMA copies the weights (a resumed run then loads its own over them). */
function initActNormFrom(flow: Flow, data: FlowData, init: { images: number; prior: number }, seed: number): void {
  if (!(Number.isSafeInteger(init.images) && init.images >= 1)) throw new Error(`trainFlow: actnormInit.images must be a whole number >= 1, got ${init.images}`);
  const sample = permutation(data.n, deriveSeed(seed, 3)).subarray(0, Math.min(data.n, init.images));
  tidy(() => {
    const b = rows(data, sample, deriveSeed(seed, 4));
    flow.initActNorm(b.x, b.cond, init.prior);
  });
}

/** Trains the flow's parameters that require grad by maximum likelihood (frozen ones stay bit-identical). */
export async function trainFlow(flow: Flow, data: FlowData, o: FlowTrainOptions): Promise<FlowTrainResult> {
  checkOptionKeys('trainFlow', o, FLOW_TRAIN_KEYS);
  checkData(flow, data, 'trainFlow');
  if (!Number.isSafeInteger(o.steps) || o.steps < 1) throw new Error(`trainFlow: steps must be an integer >= 1, got ${o.steps}`);
  if (data.n < 1) throw new Error('trainFlow: the data set is empty');
  const seed = o.seed ?? 0;
  const trainable = flow.trainableParameters();
  if (trainable.length === 0) throw new Error('trainFlow: the flow has no trainable parameters (all frozen)');
  if (o.actnormInit) initActNormFrom(flow, data, o.actnormInit, seed);
  flow.train();
  const opt = new Adam(trainable, { lr: o.lr });
  const lrFactor = cosineWithWarmup(o.warmup ?? 0, o.steps, { minFactor: o.finalLrFraction ?? 1 });
  const log = new LossLog('trainFlow', { steps: o.steps, logEvery: o.logEvery, label: o.label === null ? null : o.label ?? 'flow', name: 'nll', hint: 'lower the learning rate or set clipNorm', onLog: o.onLog });
  const validateEvery = o.validateEvery ?? o.logEvery ?? 50;
  const patience = o.patience ?? Infinity;
  if (o.validation) checkData(flow, o.validation, 'trainFlow (validation)');
  if (!(validateEvery >= 1 && patience >= 1)) throw new Error(`trainFlow: validateEvery (${validateEvery}) and patience (${patience}) must be at least 1`);
  const best = o.validation ? new BestWeights(trainable) : null;
  const ema = o.emaDecay ? new EMA(flow as Module, { decay: emaWarmupDecay(o.emaDecay) }) : null;
  // A checkpoint holds the early-stopping state too (best weights, scores), so a resumed run keeps the same step.
  const ckpt = o.checkpoint ? trainingCheckpoints('trainFlow', o.checkpoint, { model: flow as Module, optimizer: opt, ema: ema ?? undefined, best: best ?? undefined }) : null;
  // emaDecay is written only when set, so checkpoints of runs without one still resume.
  const settings = {
    steps: o.steps, batchSize: o.batchSize, lr: o.lr, warmup: o.warmup ?? 0, finalLrFraction: o.finalLrFraction ?? 1, clipNorm: o.clipNorm ?? 0, seed, n: data.n, ...(ema ? { emaDecay: o.emaDecay } : {}), ...(o.actnormInit ? { actnormInit: o.actnormInit } : {}),
    validation: o.validation ? { n: o.validation.n, validateEvery, patience, ...(o.validateAtStart ? { atStart: true } : {}) } : null,
  };
  const history: [number, number][] = [];
  let validation: FlowValidation | undefined;
  /** Measures the validation NLL of the weights at `step` (the averaged ones with an EMA: they are what gets sampled) and offers them to early stopping. */
  const check = async (step: number) => {
    const measure = async () => {
      const v = (await evalBitsPerDim(flow, o.validation!, { seed: deriveSeed(seed, 2) })).natsPerDim;
      if (!Number.isFinite(v)) throw new Error(`trainFlow: the validation NLL became ${v} at step ${step}`);
      history.push([step, v]);
      best!.offer(v, step);
    };
    flow.eval();
    await (ema ? ema.withAveraged(flow as Module, measure) : measure());
    flow.train();
  };
  try {
    // Batches and dequantization noise follow from the step, so a resumed run sees the same data.
    const resumed = ckpt?.resume({ trainer: 'trainFlow', settings });
    if (resumed) log.losses.push(...(resumed.loop.losses as [number, number][]));
    if (resumed && best) history.push(...(resumed.loop.history as [number, number][]));
    const first = resumed?.step ?? 0;
    const next = epochBatches(data.n, o.batchSize, deriveSeed(seed, 1), first);
    const started = performance.now() - ((resumed?.loop.seconds as number | undefined) ?? 0) * 1000;
    const seconds = () => (performance.now() - started) / 1000;
    let stepsRun = first;
    let interrupted = false;
    if (best && o.validateAtStart && first === 0) await check(0);
    for (let step = first; step < o.steps; step++) {
      opt.setLrFactor(lrFactor(step));
      const loss = tidy(() => {
        const b = rows(data, next(), deriveSeed(seed, 1000 + step));
        const l = flow.nll(b.x, b.cond);
        l.backward();
        if ((o.clipNorm ?? 0) > 0) clipGradNorm(trainable, o.clipNorm!);
        opt.step();
        opt.zeroGrad();
        ema?.update();
        return l;
      });
      stepsRun = step + 1;
      // Validation reads the loss too, so the log ends at the step where early stopping ends training.
      const validating = best !== null && (stepsRun % validateEvery === 0 || stepsRun === o.steps);
      await log.record(stepsRun, loss, validating);
      if (validating) {
        await check(stepsRun);
        if (best!.sinceBest >= patience) break;
      }
      if (ckpt && (await ckpt.afterStep(stepsRun, o.steps, () => ({ trainer: 'trainFlow', settings, loop: { losses: log.losses, history, seconds: seconds() } })))) {
        interrupted = stepsRun < o.steps;
        break;
      }
    }
    log.done();
    flow.eval();
    if (best) {
      best.restore();
      validation = { history, bestStep: best.bestStep, best: best.best };
    }
    return { losses: log.losses, seconds: seconds(), steps: stepsRun, ema, validation, interrupted };
  } finally {
    best?.dispose();
    ckpt?.dispose();
  }
}

/** Per-row log p(x | cond) in nats, on the CPU (image data: of the dequantized (0, 1) values). */
export async function flowLogProb(flow: Flow, data: FlowData, o: { batchSize?: number; seed?: number } = {}): Promise<Float64Array> {
  checkOptionKeys('flowLogProb', o, ['batchSize', 'seed']);
  checkData(flow, data, 'flowLogProb');
  const bs = o.batchSize ?? 512;
  const out = new Float64Array(data.n);
  for (let start = 0; start < data.n; start += bs) {
    const idx = Int32Array.from({ length: Math.min(bs, data.n - start) }, (_, i) => start + i);
    const lp = noGrad(() => tidy(() => {
      const b = rows(data, idx, deriveSeed(o.seed ?? 0, start));
      return flow.logProb(b.x, b.cond);
    }));
    out.set(await lp.data(), start);
    lp.dispose();
  }
  return out;
}

export interface FlowEval {
  natsPerDim: number;
  /** Bits/dim; for dequantized image data, of the 8-bit images (nats/dim / ln 2 + 8). */
  bitsPerDim: number;
}

/** Mean NLL of a data set in nats/dim and bits/dim (one readback per batch). */
export async function evalBitsPerDim(flow: Flow, data: FlowData, o: { batchSize?: number; seed?: number; /** progress bar label (default none) */ label?: string } = {}): Promise<FlowEval> {
  checkOptionKeys('evalBitsPerDim', o, ['batchSize', 'seed', 'label']);
  checkData(flow, data, 'evalBitsPerDim');
  const bs = o.batchSize ?? 512;
  let total = noGrad(() => tensor(new Float32Array(1), [1]));
  const bar = o.label ? new ProgressBar(Math.max(1, Math.ceil(data.n / bs)), { label: o.label }) : null;
  for (let start = 0; start < data.n; start += bs) {
    if (bar) {
      bar.update(start / bs);
      // Lets the GPU catch up, so the bar shows work done rather than work recorded.
      await runtime().keepPace();
    }
    const idx = Int32Array.from({ length: Math.min(bs, data.n - start) }, (_, i) => start + i);
    const next = noGrad(() => tidy(() => {
      const b = rows(data, idx, deriveSeed(o.seed ?? 0, start));
      return add(total, sum(flow.logProb(b.x, b.cond)));
    }));
    total.dispose();
    total = next;
  }
  const nats = -(await total.data())[0] / (data.n * data.dim);
  total.dispose();
  bar?.update(bar.total);
  bar?.done();
  return { natsPerDim: nats, bitsPerDim: data.dequantize ? bitsPerDimFromNats(nats) : nats / Math.LN2 };
}

/**
 * n samples on the CPU, [n, dim]. Conditional flows take `labels` (and `task`) with n rows.
 * `images`: the flow was trained on `imageFlowData`, so its (0, 1) samples are returned as images
 * in [-1, 1], clamped (default: only flows with a logit transform, whose outputs are in (0, 1)).
 */
export async function sampleFlow(flow: Flow, n: number, o: { seed?: number; labels?: Int32Array; task?: Float32Array; batchSize?: number; images?: boolean } = {}): Promise<Float32Array> {
  checkOptionKeys('sampleFlow', o, ['seed', 'labels', 'task', 'batchSize', 'images']);
  if (!!flow.config.condition !== !!o.labels) throw new Error(`sampleFlow: ${flow.config.condition ? 'a conditional flow needs labels' : 'an unconditional flow takes no labels'}`);
  if (o.labels && o.labels.length !== n) throw new Error(`sampleFlow: ${o.labels.length} labels for ${n} samples`);
  const d = flow.dim;
  const out = new Float32Array(n * d);
  const bs = o.batchSize ?? 1000;
  const image = o.images ?? (flow.config.logitAlpha !== undefined && flow.config.logitAlpha !== null);
  for (let start = 0, k = 0; start < n; start += bs, k++) {
    const idx = Int32Array.from({ length: Math.min(bs, n - start) }, (_, i) => start + i);
    const data: FlowData = { x: new Float32Array(0), n, dim: d, labels: o.labels, task: o.task };
    const x = noGrad(() => tidy(() => flow.sample(idx.length, { seed: deriveSeed(o.seed ?? 0, k), cond: condition(selectRows(data, idx)) })));
    const v = await x.data();
    x.dispose();
    out.set(image ? (v as Float32Array).map((p) => Math.min(1, Math.max(-1, p * 2 - 1))) : v, start * d);
  }
  return out;
}
