/**
 * Cheng et al.'s transfer recipe for conditional diffusion (arXiv 2502.04491, §3):
 *  1. pre-train K score heads f_1..f_K and ONE shared condition encoder h jointly on K source tasks;
 *  2. freeze h and train a fresh head f_0 on the m target pairs (`fineTuneHead`);
 *  3. baseline: train h and f_0 together on the same m pairs (`trainFromScratch`).
 *
 * Choices the paper leaves open, made here:
 *  - forward process: the paper's OU/VP process α_t = e^{-t}, σ_t² = 1 - e^{-2t}, t ~ U[tMin, tMax]
 *    (defaults T0 = 1e-3, T = 5: α_T = 0.0067, so x_T is N(0, I) to within 0.7%);
 *  - loss: ε-prediction ‖f(x_t, h(y), t) - ε‖², i.e. the paper's score-matching loss with the
 *    weight σ_t² (the score is -ε̂/σ_t); the unweighted score loss is dominated by t near T0.
 *    Heads with prediction 'sample' output x̂0 = c_skip x_t + c_out F (EDM's preconditioning,
 *    x0Scales) and learn ‖(x̂0 - x0)/c_out‖²: a head narrower than the data cannot reproduce
 *    ε's full-rank noise, and x̂0 = (x_t - σ ε̂)/α then keeps what it misses, magnified by σ/α;
 *  - optimizer: Adam, gradient norm clipped to 1, optional warmup + cosine decay;
 *  - sampler: ancestral sampling of the reverse process (DDIM's update with eta = 1, the exact
 *    Gaussian step of the reverse SDE given x̂0) on a grid quadratic in t from T down to T0,
 *    started from N(0, I); the returned sample is Tweedie's x̂0 at T0;
 *  - posterior mean E[x|y]: the average of S independent samples per y.
 */
import {
  Adam,
  add,
  checkOptionKeys,
  clipGradNorm,
  cosineWithWarmup,
  deriveSeed,
  div,
  LossLog,
  mean,
  ModuleList,
  mul,
  noGrad,
  randn,
  slice,
  square,
  sub,
  tensor,
  tidy,
  trainingCheckpoints,
  type CheckpointingOptions,
  type Module,
  type Tensor,
} from '@transfuse/core';
import { epochBatches, gatherRows } from '../data/batches.js';
import { createRng } from '../data/prng.js';
import { x0Scales, type ConditionEncoder, type MlpScoreNet } from '../diffusion/mlp.js';
import { reverseStepAt } from '../diffusion/sampler.js';
import { vpProcess } from '../diffusion/schedule.js';

/** n pairs (x_i, y_i), row-major: x [n, d_x], y [n, D_y]. */
export interface VectorTask {
  x: Float32Array;
  y: Float32Array;
  n: number;
}

export interface VpTimes {
  /** Early-stopping time T0 (default 1e-3). */
  tMin?: number;
  /** Horizon T (default 5). */
  tMax?: number;
}

export interface ConditionalTrainOptions extends VpTimes {
  steps: number;
  /** Pairs per task per step (capped at the task's size: batch = m on a small target). */
  batchSize: number;
  lr: number;
  warmup?: number;
  /** Cosine decay to this fraction of lr by the last step (default 1: constant). */
  finalLrFraction?: number;
  /** Global gradient-norm clip (default 1; 0 disables). */
  clipNorm?: number;
  seed?: number;
  /** Read the loss back every this many steps (each read waits for the GPU). */
  logEvery?: number;
  onLog?: (step: number, loss: number) => void;
  /** Progress bar label (default: no bar). */
  label?: string | null;
  /** Sees the rows of task k in every batch (tests check compared runs see the same data). */
  onBatch?: (task: number, indices: Int32Array) => void;
  /** Numbered checkpoints of the heads and encoder during training, resume, and save-and-stop on SIGINT/SIGTERM. */
  checkpoint?: CheckpointingOptions;
}

const CONDITIONAL_TRAIN_KEYS = ['tMin', 'tMax', 'steps', 'batchSize', 'lr', 'warmup', 'finalLrFraction', 'clipNorm', 'seed', 'logEvery', 'onLog', 'label', 'onBatch', 'checkpoint'];

export interface ConditionalTrainResult {
  /** (step, loss) pairs, the loss averaged over tasks. */
  losses: [number, number][];
  steps: number;
  seconds: number;
  /** A signal stopped training; the newest checkpoint holds the state to resume from. */
  interrupted?: boolean;
}

const times = (o: VpTimes) => ({ tMin: o.tMin ?? 1e-3, tMax: o.tMax ?? 5 });

function checkTask(task: VectorTask, head: MlpScoreNet, yDim: number, k: number): void {
  const dx = head.config.dataDim;
  if (!(task.n >= 1) || task.x.length !== task.n * dx || task.y.length !== task.n * yDim) {
    throw new Error(`task ${k}: expected x [${task.n}, ${dx}] and y [${task.n}, ${yDim}], got ${task.x.length} and ${task.y.length} values`);
  }
}

/** h(y) for every row of y, on the CPU (the frozen encoder is evaluated once, not every step). */
export async function encode(encoder: ConditionEncoder, y: Float32Array, n: number): Promise<Float32Array> {
  const w = noGrad(() => encoder.forward(tensor(y, [n, encoder.config.inFeatures])));
  const out = (await w.data()) as Float32Array;
  w.dispose();
  return out;
}

/**
 * The shared training loop: heads[k] learns task k; the encoder is trained with them unless it
 * is frozen (no parameter requires grad), in which case h(y) is precomputed once.
 */
export async function trainConditional(tasks: VectorTask[], heads: MlpScoreNet[], encoder: ConditionEncoder, o: ConditionalTrainOptions): Promise<ConditionalTrainResult> {
  checkOptionKeys('trainConditional', o, CONDITIONAL_TRAIN_KEYS);
  if (tasks.length === 0 || tasks.length !== heads.length) throw new Error(`training: ${tasks.length} tasks for ${heads.length} heads (need one head per task, at least one)`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`training: steps must be a positive integer, got ${o.steps}`);
  const { tMin, tMax } = times(o);
  const seed = o.seed ?? 0;
  const dy = encoder.config.inFeatures;
  const dw = encoder.config.outFeatures;
  tasks.forEach((t, k) => {
    checkTask(t, heads[k], dy, k);
    if (heads[k].config.condDim !== dw) throw new Error(`head ${k}: condDim ${heads[k].config.condDim} but the encoder outputs ${dw}`);
  });
  const encoderFrozen = encoder.trainableParameters().length === 0;
  const trainable = [...heads.flatMap((h) => h.trainableParameters()), ...encoder.trainableParameters()];
  if (trainable.length === 0) throw new Error('training: nothing to train (every head and the encoder are frozen)');
  // The frozen encoder's output is fixed: compute it once instead of every step.
  const conds = encoderFrozen ? await Promise.all(tasks.map((t) => encode(encoder, t.y, t.n))) : tasks.map((t) => t.y);
  const condDim = encoderFrozen ? dw : dy;
  const opt = new Adam(trainable, { lr: o.lr });
  const lrFactor = cosineWithWarmup(o.warmup ?? 0, o.steps, { minFactor: o.finalLrFraction ?? 1 });
  const ckpt = o.checkpoint ? trainingCheckpoints('trainConditional', o.checkpoint, { model: new ModuleList([...heads, encoder] as Module[]), optimizer: opt }) : null;
  const settings = { steps: o.steps, batchSize: o.batchSize, lr: o.lr, warmup: o.warmup ?? 0, finalLrFraction: o.finalLrFraction ?? 1, clipNorm: o.clipNorm ?? 1, seed, tMin, tMax, n: tasks.map((t) => t.n) };
  const resumed = (() => {
    try {
      return ckpt?.resume({ trainer: 'trainConditional', settings });
    } catch (e) {
      ckpt?.dispose();
      throw e;
    }
  })();
  const first = resumed?.step ?? 0;
  // Batches and noise follow from the step; the time stream continues from its saved state.
  const streams = tasks.map((t, k) => epochBatches(t.n, Math.min(o.batchSize, t.n), deriveSeed(seed, 10 + k), first));
  const rng = createRng(resumed ? (resumed.loop.rng as number) : deriveSeed(seed, 2));
  const log = new LossLog('training', { steps: o.steps, logEvery: o.logEvery, label: o.label || null, hint: 'lower the learning rate', onLog: o.onLog });
  if (resumed) log.losses.push(...(resumed.loop.losses as [number, number][]));
  const started = performance.now() - ((resumed?.loop.seconds as number | undefined) ?? 0) * 1000;
  let done = first;
  let interrupted = false;
  try {
    for (let step = first; step < o.steps; step++) {
      opt.setLrFactor(lrFactor(step));
      const loss = tidy(() => {
        const batches = tasks.map((t, k) => {
          const rows = streams[k]();
          o.onBatch?.(k, rows);
          return { rows, x: gatherRows(t.x, heads[k].config.dataDim, rows), c: gatherRows(conds[k], condDim, rows) };
        });
        // One encoder pass over every task's conditions, then split per task.
        const sizes = batches.map((b) => b.rows.length);
        const cAll = tensor(concatF32(batches.map((b) => b.c)), [sizes.reduce((a, b) => a + b, 0), condDim]);
        const wAll = encoderFrozen ? cAll : encoder.forward(cAll);
        let start = 0;
        const perTask = batches.map((b, k) => {
          const n = b.rows.length;
          const w = sizes.length === 1 ? wAll : slice(wAll, [start, 0], [start + n, dw]);
          start += n;
          const ts = Float32Array.from({ length: n }, () => tMin + (tMax - tMin) * rng.next());
          const x0 = tensor(b.x, [n, heads[k].config.dataDim]);
          const noise = randn(x0.shape, { seed: deriveSeed(seed, 1000 + step * tasks.length + k) });
          const a = tensor(Float32Array.from(ts, vpProcess.alpha), [n, 1]);
          const s = tensor(Float32Array.from(ts, vpProcess.sigma), [n, 1]);
          const xt = add(mul(x0, a), mul(noise, s));
          const tt = tensor(ts);
          const out = heads[k].forward(xt, w, tt);
          // An x̂0 head is trained on F's scale, ‖(x̂0 - x0)/c_out‖² (EDM's weighting).
          const c = heads[k].config;
          return mean(square(c.prediction === 'sample' ? div(sub(out, x0), x0Scales(tt, c.dataStd).out) : sub(out, noise)));
        });
        const l = perTask.length === 1 ? perTask[0] : mul(perTask.reduce((acc, v) => add(acc, v)), 1 / perTask.length);
        l.backward();
        if ((o.clipNorm ?? 1) > 0) clipGradNorm(trainable, o.clipNorm ?? 1);
        opt.step();
        opt.zeroGrad();
        return l;
      });
      done = step + 1;
      await log.record(done, loss);
      const state = () => ({ trainer: 'trainConditional', settings, loop: { rng: rng.state(), losses: log.losses, seconds: (performance.now() - started) / 1000 } });
      if (ckpt && (await ckpt.afterStep(done, o.steps, state))) {
        interrupted = done < o.steps;
        break;
      }
    }
  } finally {
    ckpt?.dispose();
  }
  log.done();
  return { losses: log.losses, steps: done, seconds: (performance.now() - started) / 1000, interrupted };
}

function concatF32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface PretrainOptions extends ConditionalTrainOptions {
  /** One fresh score head per source task. */
  heads: MlpScoreNet[];
  /** The shared condition encoder h. */
  encoder: ConditionEncoder;
}

/** Step 1: K heads and the shared encoder trained jointly (loss averaged over the K tasks). */
export async function pretrainMultiSource(tasks: VectorTask[], o: PretrainOptions): Promise<ConditionalTrainResult> {
  const { heads, encoder, ...train } = o;
  checkOptionKeys('pretrainMultiSource', o, [...CONDITIONAL_TRAIN_KEYS, 'heads', 'encoder']);
  if (encoder.trainableParameters().length === 0) throw new Error('pretrainMultiSource: the encoder is frozen; pre-training learns it');
  return trainConditional(tasks, heads, encoder, train);
}

/** Step 2: freezes the encoder (for good) and trains the new head f_0 on the target pairs. */
export async function fineTuneHead(encoder: ConditionEncoder, head: MlpScoreNet, target: VectorTask, o: ConditionalTrainOptions): Promise<ConditionalTrainResult> {
  checkOptionKeys('fineTuneHead', o, CONDITIONAL_TRAIN_KEYS); // before the encoder is frozen for good
  encoder.freeze();
  return trainConditional([target], [head], encoder, o);
}

/** Step 3, the baseline: a fresh encoder and head trained together on the same target pairs. */
export async function trainFromScratch(encoder: ConditionEncoder, head: MlpScoreNet, target: VectorTask, o: ConditionalTrainOptions): Promise<ConditionalTrainResult> {
  if (encoder.trainableParameters().length === 0) throw new Error('trainFromScratch: the encoder is frozen; the baseline trains it');
  return trainConditional([target], [head], encoder, o);
}

export interface ConditionalSampleOptions extends VpTimes {
  /** Reverse steps from T to T0 (default 50). */
  steps?: number;
  /** 1 (default): ancestral sampling (the reverse SDE); 0: deterministic DDIM (probability-flow ODE). */
  eta?: number;
  /** Clip x̂0 to [-clip, clip] at every step (images in [-1, 1]); unset: no clipping. */
  clip?: number;
  seed?: number;
}

/** The sampler's times: T = t_0 > t_1 > ... > t_N = T0, quadratic in t (finer near T0). */
export function reverseTimes(steps: number, o: VpTimes = {}): number[] {
  const { tMin, tMax } = times(o);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`sampler: steps must be a positive integer, got ${steps}`);
  return Array.from({ length: steps + 1 }, (_, i) => tMin + (tMax - tMin) * (1 - i / steps) ** 2);
}

/**
 * Samples x ~ p̂(x | w) for a batch of representations w = h(y) [B, d_y]; returns the GPU tensor
 * [B, d_x]. Each step: x̂0 = (x - σ_t ε̂)/α_t, then x_s = α_s x̂0 + √(σ_s² - c²) ε̂ + c z with
 * c = eta · the DDPM posterior std of q(x_s | x_t, x̂0).
 */
const SAMPLE_KEYS = ['tMin', 'tMax', 'steps', 'eta', 'clip', 'seed'];

export function sampleConditional(head: MlpScoreNet, w: Tensor, o: ConditionalSampleOptions = {}): Tensor {
  checkOptionKeys('sampleConditional', o, SAMPLE_KEYS);
  const ts = reverseTimes(o.steps ?? 50, o);
  const eta = o.eta ?? 1;
  if (!(eta >= 0 && eta <= 1)) throw new Error(`sampler: eta must be in [0, 1], got ${eta}`);
  const seed = o.seed ?? 0;
  const b = w.shape[0];
  const d = head.config.dataDim;
  return noGrad(() => {
    let x = randn([b, d], { seed: deriveSeed(seed, 0) });
    // The VP process has ᾱ_t = α_t² = e^{-2t}; the last step lands on the clean estimate (ᾱ = 1).
    ts.forEach((t, i) => {
      const abPrev = i + 1 < ts.length ? vpProcess.alpha(ts[i + 1]) ** 2 : 1;
      const next = tidy(() => {
        const out = head.forward(x, w, tensor(new Float32Array(b).fill(t)));
        const step = { sampler: 'ddim', eta, clip: o.clip ?? null, prediction: head.config.prediction, noiseSeed: deriveSeed(seed, i + 1) } as const;
        return reverseStepAt(x, out, vpProcess.alpha(t) ** 2, abPrev, step);
      });
      x.dispose();
      x = next;
    });
    return x;
  });
}

export interface PosteriorOptions extends ConditionalSampleOptions {
  /** S: samples per y (default 16). */
  samples?: number;
  /** Rows (y's times S) per GPU batch (default 1024). */
  batchSize?: number;
}

export interface PosteriorEstimate {
  /** Σ_s x_s / S per y, [n, d_x]. */
  mean: Float32Array;
  /** Σ_s x_s² / S per y and coordinate, [n, d_x] (gives the per-sample error without storing samples). */
  meanSquare: Float32Array;
}

/** E[x | y] estimated by averaging S conditional samples for each of the n rows of y. */
export async function posteriorMean(head: MlpScoreNet, encoder: ConditionEncoder, y: Float32Array, n: number, o: PosteriorOptions = {}): Promise<PosteriorEstimate> {
  checkOptionKeys('posteriorMean', o, [...SAMPLE_KEYS, 'samples', 'batchSize']);
  const { samples, batchSize, ...sampling } = o;
  const S = samples ?? 16;
  const d = head.config.dataDim;
  const dy = encoder.config.inFeatures;
  if (y.length !== n * dy) throw new Error(`posteriorMean: expected y [${n}, ${dy}], got ${y.length} values`);
  const perBatch = Math.max(1, Math.floor((batchSize ?? 1024) / S));
  const w = await encode(encoder, y, n);
  const dw = encoder.config.outFeatures;
  const meanOut = new Float32Array(n * d);
  const sqOut = new Float32Array(n * d);
  for (let start = 0, k = 0; start < n; start += perBatch, k++) {
    const m = Math.min(perBatch, n - start);
    // Each y's representation repeated S times (rows i·S .. i·S + S - 1).
    const rep = new Float32Array(m * S * dw);
    for (let i = 0; i < m; i++) for (let s = 0; s < S; s++) rep.set(w.subarray((start + i) * dw, (start + i + 1) * dw), (i * S + s) * dw);
    const wt = tensor(rep, [m * S, dw]);
    const x = sampleConditional(head, wt, { ...sampling, seed: deriveSeed(o.seed ?? 0, k) });
    const v = (await x.data()) as Float32Array;
    x.dispose();
    wt.dispose();
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < d; j++) {
        let s1 = 0;
        let s2 = 0;
        for (let s = 0; s < S; s++) {
          const e = v[(i * S + s) * d + j];
          s1 += e;
          s2 += e * e;
        }
        meanOut[(start + i) * d + j] = s1 / S;
        sqOut[(start + i) * d + j] = s2 / S;
      }
    }
  }
  return { mean: meanOut, meanSquare: sqOut };
}
