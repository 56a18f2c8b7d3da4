/** The runner shared by both experiments: pretraining, fine-tuning vs scratch per (target, m, seed), and the report. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSeed, loadCheckpoint, saveCheckpoint } from '@transfuse/core';
import { ConditionEncoder, MlpScoreNet } from '../../diffusion/mlp.js';
import { writeFileAtomic, writeJson } from '../../io/files.js';
import { lineChartSvg } from '../../io/plot.js';
import { fineTuneHead, posteriorMean, pretrainMultiSource, trainFromScratch, type VectorTask } from '../../transfer/multisource.js';
import { cell, fmtStat, stat } from '../results.js';
import { PAPER_M, PAPER_TABLES, type ChengCommon } from './presets.js';

/** A target task: a pool of training pairs per seed and fixed test pairs with their references. */
export interface TargetSpec {
  label: string;
  pool: (seed: number) => VectorTask;
  testY: Float32Array;
  /** What the posterior-mean estimate is compared with, [nTest, d_x], in metric units. */
  reference: Float64Array;
  /** Maps the model's x to metric units (identity, or [-1, 1] → [0, 1] pixels). */
  toMetric: (v: number) => number;
}

interface CellResult {
  /** The main metric of the estimated posterior mean. */
  mse: number;
  /** The same for single posterior samples (the restoration experiment's appendix reading). */
  sampleMse: number;
  finalLoss: number;
  trainSeconds: number;
}

export interface ChengResults {
  experiment: string;
  preset: string;
  config: ChengCommon;
  metric: string;
  notes: string[];
  pretrain: { seed: number; finalLoss: number; seconds: number }[];
  /** cells[target][method][m] = one result per seed. */
  cells: Record<string, Record<'finetune' | 'scratch', Record<string, CellResult[]>>>;
}

export interface RunSpec {
  experiment: string;
  dataDim: number;
  condDim: number;
  /** Clip x̂0 in the sampler (images). */
  clip?: number;
  sources: (seed: number) => VectorTask[];
  targets: TargetSpec[];
  /** Reduces the per-coordinate squared error of one test pair to the metric (sum or mean). */
  reduce: 'sum' | 'mean';
  metric: string;
  notes: string[];
}

export async function runCheng(spec: RunSpec, p: ChengCommon, presetName: string, out: string, log: (m: string) => void): Promise<ChengResults> {
  const tMax = 5;
  const encoderConfig = (seed: number) => ({ inFeatures: spec.condDim, outFeatures: p.encoder.out, hidden: p.encoder.hidden, depth: p.encoder.depth, output: p.encoder.output, seed });
  const head = (seed: number) => new MlpScoreNet({ dataDim: spec.dataDim, condDim: p.encoder.out, hidden: p.head.hidden, depth: p.head.depth, prediction: p.head.prediction ?? 'epsilon', timeDim: p.timeDim, tMax, seed });
  const logEvery = (steps: number) => Math.max(10, Math.floor(steps / 10));
  const results: ChengResults = { experiment: spec.experiment, preset: presetName, config: p, metric: spec.metric, notes: spec.notes, pretrain: [], cells: {} };

  async function evaluate(f: MlpScoreNet, h: ConditionEncoder, t: TargetSpec, seed: number): Promise<{ mse: number; sampleMse: number }> {
    const est = await posteriorMean(f, h, t.testY, p.nTest, { steps: p.sampler.steps, samples: p.sampler.samples, clip: spec.clip, tMax, seed });
    let mse = 0;
    let sampleMse = 0;
    for (let i = 0; i < p.nTest; i++) {
      let a = 0;
      let b = 0;
      for (let j = 0; j < spec.dataDim; j++) {
        const k = i * spec.dataDim + j;
        const r = t.reference[k];
        const m = t.toMetric(est.mean[k]);
        a += (m - r) ** 2;
        // E_s (g(x_s) - r)² for the affine g: from the first two sample moments.
        const scale = t.toMetric(1) - t.toMetric(0);
        const varS = Math.max(0, est.meanSquare[k] - est.mean[k] ** 2) * scale * scale;
        b += varS + (m - r) ** 2;
      }
      const div = spec.reduce === 'mean' ? spec.dataDim : 1;
      mse += a / div / p.nTest;
      sampleMse += b / div / p.nTest;
    }
    return { mse, sampleMse };
  }

  for (const seed of p.seeds) {
    const ckpt = join(out, 'models', `pretrained-seed${seed}`);
    const encoder = new ConditionEncoder(encoderConfig(deriveSeed(seed, 1)));
    let trained = false;
    const pre = await cell(out, `pretrain-seed${seed}`, async () => {
      const tasks = spec.sources(seed);
      const heads = tasks.map((_, k) => head(deriveSeed(seed, 100 + k)));
      log(`${spec.experiment}: pre-training ${tasks.length} heads + shared encoder (seed ${seed})`);
      const r = await pretrainMultiSource(tasks, { heads, encoder, ...p.pretrain, seed: deriveSeed(seed, 2), logEvery: logEvery(p.pretrain.steps), finalLrFraction: 0.1, label: `${spec.experiment} pre-training seed ${seed}` });
      await saveCheckpoint(ckpt, { model: encoder, step: r.steps });
      heads.forEach((f) => f.dispose());
      trained = true;
      return { seed, finalLoss: r.losses.at(-1)![1], seconds: r.seconds };
    }, log);
    results.pretrain.push(pre);
    if (!trained) {
      if (!existsSync(ckpt)) throw new Error(`${spec.experiment}: the pre-training cell of seed ${seed} is done but ${ckpt} is missing; delete ${join(out, 'cells', `pretrain-seed${seed}.json`)} to redo it`);
      loadCheckpoint(ckpt, { model: encoder });
    }
    for (const t of spec.targets) {
      const pool = t.pool(seed);
      for (const m of p.mList) {
        if (m > pool.n) throw new Error(`${spec.experiment}: m = ${m} exceeds the target pool of ${pool.n}`);
        const data: VectorTask = { n: m, x: pool.x.subarray(0, m * spec.dataDim), y: pool.y.subarray(0, m * spec.condDim) };
        // Identical budgets: steps, lr, batch = m, head initialisation and data order.
        const opts = { steps: p.target.steps, batchSize: m, lr: p.target.lr, seed: deriveSeed(seed, 3), logEvery: logEvery(p.target.steps) };
        const run = async (method: 'finetune' | 'scratch'): Promise<CellResult> => {
          const f = head(deriveSeed(seed, 4));
          const h = method === 'finetune' ? encoder : new ConditionEncoder(encoderConfig(deriveSeed(seed, 5)));
          const o = { ...opts, label: `${method} ${t.label} m=${m} seed ${seed}` };
          const r = method === 'finetune' ? await fineTuneHead(h, f, data, o) : await trainFromScratch(h, f, data, o);
          const e = await evaluate(f, h, t, deriveSeed(seed, 6));
          f.dispose();
          if (h !== encoder) h.dispose();
          return { ...e, finalLoss: r.losses.at(-1)![1], trainSeconds: r.seconds };
        };
        for (const method of ['finetune', 'scratch'] as const) {
          const id = `${method}-${t.label.replace(/\s+/g, '')}-m${m}-seed${seed}`;
          ((results.cells[t.label] ??= { finetune: {}, scratch: {} })[method][m] ??= []).push(await cell(out, id, () => run(method), log));
        }
      }
    }
    encoder.dispose();
  }
  return results;
}

/** results.json, results.md and mse.svg; returns the Markdown. */
export function writeChengReport(out: string, r: ChengResults, extra: string[]): string {
  writeJson(join(out, 'results.json'), r);
  const c = r.config;
  const lines = [
    `# ${r.experiment} (preset ${r.preset})`,
    '',
    `Metric: ${r.metric}. Lower is better. Mean ± sd over seeds ${c.seeds.join(', ')}.`,
    `Encoder h: ${c.encoder.depth}-layer MLP, ${c.encoder.hidden} hidden → ${c.encoder.out} (${c.encoder.output} output); heads f: ${c.head.depth}-layer MLP, ${c.head.hidden} hidden, predicting ${c.head.prediction === 'sample' ? 'x̂0' : 'ε'}, time embedding ${c.timeDim}. ` +
      `Pre-training ${c.pretrain.steps} steps × ${c.pretrain.batchSize} pairs per source (lr ${c.pretrain.lr}); target ${c.target.steps} steps, batch = m (lr ${c.target.lr}); ` +
      `${c.sampler.samples} samples per y, ${c.sampler.steps} reverse steps; ${c.nTest} test pairs; ${c.nSource} pairs per source.`,
    ...extra,
    '',
  ];
  for (const [label, methods] of Object.entries(r.cells)) {
    const ms = Object.keys(methods.finetune).map(Number).sort((a, b) => a - b);
    const paper = PAPER_TABLES[label];
    lines.push(`## Target ${label}`, '', '| m | fine-tuning (frozen h) | train-from-scratch | ratio | paper fine-tuning | paper scratch |', '|---|---|---|---|---|---|');
    for (const m of ms) {
      const f = stat(methods.finetune[m].map((e) => e.mse));
      const s = stat(methods.scratch[m].map((e) => e.mse));
      const i = PAPER_M.indexOf(m);
      lines.push(`| ${m} | ${fmtStat(f)} | ${fmtStat(s)} | ${(f.mean / s.mean).toFixed(3)} | ${paper && i >= 0 ? paper.finetune[i] : '-'} | ${paper && i >= 0 ? paper.scratch[i] : '-'} |`);
    }
    lines.push('', `Per-sample error (posterior samples instead of their mean): ` + ms.map((m) => `m=${m}: ${stat(methods.finetune[m].map((e) => e.sampleMse)).mean.toFixed(4)} / ${stat(methods.scratch[m].map((e) => e.sampleMse)).mean.toFixed(4)}`).join('; ') + ' (fine-tuning / scratch).', '');
  }
  lines.push('Pre-training: ' + r.pretrain.map((p) => `seed ${p.seed}: final loss ${p.finalLoss.toFixed(4)}, ${p.seconds.toFixed(1)} s`).join('; ') + '.', '', '## Choices the paper leaves open', '', ...r.notes.map((n) => `- ${n}`));
  const md = `${lines.join('\n')}\n`;
  writeFileAtomic(join(out, 'results.md'), md);
  const series = Object.entries(r.cells).flatMap(([label, methods]) => {
    const ms = Object.keys(methods.finetune).map(Number).sort((a, b) => a - b);
    const pts = (k: 'finetune' | 'scratch') => ms.map((x) => ({ x, y: stat(methods[k][x].map((e) => e.mse)).mean, spread: stat(methods[k][x].map((e) => e.mse)).sd }));
    const paper = PAPER_TABLES[label];
    const paperPts = (k: 'finetune' | 'scratch') => PAPER_M.map((x, i) => ({ x, y: paper[k][i] }));
    return [
      { name: `${label} fine-tuning`, points: pts('finetune') },
      { name: `${label} scratch`, points: pts('scratch') },
      ...(paper ? [{ name: `${label} paper fine-tuning`, points: paperPts('finetune'), dashed: true }, { name: `${label} paper scratch`, points: paperPts('scratch'), dashed: true }] : []),
    ];
  });
  writeFileAtomic(join(out, 'mse.svg'), lineChartSvg(`${r.experiment}: MSE of the posterior mean vs m`, 'target samples m', 'MSE', series, { logX: true }));
  return md;
}
