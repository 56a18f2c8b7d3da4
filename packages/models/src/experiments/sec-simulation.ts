/**
 * Simulations of Tian & Shen's shared-embedding condition (SEC) with coupling flows, where the true
 * densities are known in closed form, so the error is KL(true || model) = E_true[log p - log q],
 * estimated by Monte Carlo on fresh true samples (reported with its standard error).
 *
 * Conditional: x ∈ R², label z ∈ {0..K-1}, x = μ_z + B_j(ε), ε ~ N(0, I). The centres μ_z (the
 * shared embedding h(z)) are common to source and target; the task-specific part is the noise map
 * B_j(ε) = (a ε1, b ε2 + c(ε1² - 1)), a Gaussian on the source and a banana on the target.
 * Transfer: h is learned on the source, frozen, and the rest fine-tuned on the target.
 *
 * Unconditional: X_j = g_j(U) with U a ring of 6 Gaussians (a known non-Gaussian law) and
 * g_j(u) = (a1 u1 + b1, a2 u2 + c sin(u1) + b2). Transfer: the base flow learned on the source (the
 * law of U) is frozen and only g_t is fitted on the target.
 */
import { join } from 'node:path';
import { deriveSeed } from '@transfuse/core';
import { createRng, type Rng } from '../data/prng.js';
import type { Flow, FlowConfig } from '../flows/flow.js';
import { flowLogProb, splitFlowData, trainFlow, type FlowData, type FlowTrainResult } from '../flows/train.js';
import { lineChartSvg } from '../io/plot.js';
import { baselineFlow, conditionalFlowTransfer, standardBaseConfig, unconditionalFlowTransfer } from '../transfer/flows.js';
import { writeFileAtomic, writeJson } from '../io/files.js';
import { cell, claimResultsFolder, fmtStat, stat } from './results.js';

export interface SecSimulationPreset {
  /** Source sample sizes n_s. */
  nsList: number[];
  /** Target sample size n_t. */
  nt: number;
  seeds: number[];
  sourceSteps: number;
  targetSteps: number;
  batchSize: number;
  lr: number;
  /** Fresh true samples for the Monte Carlo KL. */
  evalN: number;
  hidden: number[];
  /**
   * Early stopping (0: off, every step of the budget runs): this share of each task's sample is
   * held out, its NLL measured every `validateEvery` steps, training stops after `patience`
   * measurements without improvement, and the best weights are kept. Steps are then caps.
   */
  validationFraction: number;
  validateEvery: number;
  patience: number;
}

export const SEC_SIMULATION_PRESETS: Record<'smoke' | 'cpu' | 'paper', SecSimulationPreset> = {
  // CI: under 2 minutes; proves the pipeline, not the science.
  smoke: { nsList: [100, 1000], nt: 100, seeds: [0], sourceSteps: 60, targetSteps: 60, batchSize: 64, lr: 3e-3, evalN: 2000, hidden: [32, 32], validationFraction: 0.25, validateEvery: 10, patience: 3 },
  // About an hour on 2 cores with software WebGPU. Without early stopping, 800 target steps over
  // 100 points memorized them (KL 10-85 nats; EXPERIMENTS.md), so the step counts are caps.
  cpu: { nsList: [100, 300, 1000, 3000], nt: 100, seeds: [0, 1, 2], sourceSteps: 1500, targetSteps: 800, batchSize: 128, lr: 2e-3, evalN: 20000, hidden: [64, 64], validationFraction: 0.25, validateEvery: 20, patience: 8 },
  // The full grid with more seeds and steps.
  paper: { nsList: [100, 300, 1000, 3000, 10000], nt: 100, seeds: [0, 1, 2, 3, 4], sourceSteps: 4000, targetSteps: 2000, batchSize: 256, lr: 1e-3, evalN: 50000, hidden: [128, 128], validationFraction: 0.25, validateEvery: 20, patience: 10 },
};

const K = 8;
const LOG_2PI = Math.log(2 * Math.PI);

/** The shared embedding h(z): 8 fixed class centres. */
export const SEC_CENTRES: readonly [number, number][] = Array.from({ length: K }, (_, k) => {
  const r = 3 + (k % 2);
  return [r * Math.cos((2 * Math.PI * k) / K), r * Math.sin((2 * Math.PI * k) / K)];
});

/** The task-specific noise maps B_j(ε) = (a ε1, b ε2 + c(ε1² - 1)). */
export const SEC_NOISE = { source: { a: 0.5, b: 0.35, c: 0 }, target: { a: 0.35, b: 0.2, c: 0.35 } } as const;

/** The maps g_j(u) = (a1 u1 + b1, a2 u2 + c sin(u1) + b2). */
export const SEC_MAPS = { source: { a1: 1, a2: 1, b1: 0, b2: 0, c: 0 }, target: { a1: 0.6, a2: 1.4, b1: 0.5, b2: -0.3, c: 0.6 } } as const;

type Noise = { a: number; b: number; c: number };
type Map2 = { a1: number; a2: number; b1: number; b2: number; c: number };

/** Conditional draws: labels uniform on 0..K-1, x = μ_z + B(ε). */
export function sampleConditional(n: number, noise: Noise, rng: Rng): FlowData {
  const x = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const z = rng.int(K);
    const e1 = rng.normal();
    const e2 = rng.normal();
    labels[i] = z;
    x[2 * i] = SEC_CENTRES[z][0] + noise.a * e1;
    x[2 * i + 1] = SEC_CENTRES[z][1] + noise.b * e2 + noise.c * (e1 * e1 - 1);
  }
  return { x, n, dim: 2, labels };
}

/** log p(x | z) in closed form (float64). */
export function conditionalLogDensity(x0: number, x1: number, z: number, noise: Noise): number {
  const e1 = (x0 - SEC_CENTRES[z][0]) / noise.a;
  const e2 = (x1 - SEC_CENTRES[z][1] - noise.c * (e1 * e1 - 1)) / noise.b;
  return -0.5 * (e1 * e1 + e2 * e2) - LOG_2PI - Math.log(noise.a * noise.b);
}

const RING = { components: 6, radius: 2, sd: 0.3 };

function sampleU(rng: Rng): [number, number] {
  const k = rng.int(RING.components);
  const t = (2 * Math.PI * k) / RING.components;
  return [RING.radius * Math.cos(t) + RING.sd * rng.normal(), RING.radius * Math.sin(t) + RING.sd * rng.normal()];
}

function logDensityU(u0: number, u1: number): number {
  let m = -Infinity;
  const terms: number[] = [];
  for (let k = 0; k < RING.components; k++) {
    const t = (2 * Math.PI * k) / RING.components;
    const d0 = (u0 - RING.radius * Math.cos(t)) / RING.sd;
    const d1 = (u1 - RING.radius * Math.sin(t)) / RING.sd;
    const v = -0.5 * (d0 * d0 + d1 * d1);
    terms.push(v);
    m = Math.max(m, v);
  }
  const lse = m + Math.log(terms.reduce((s, v) => s + Math.exp(v - m), 0));
  return lse - Math.log(RING.components) - LOG_2PI - 2 * Math.log(RING.sd);
}

/** Unconditional draws X = g(U). */
export function sampleUnconditional(n: number, g: Map2, rng: Rng): FlowData {
  const x = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const [u0, u1] = sampleU(rng);
    x[2 * i] = g.a1 * u0 + g.b1;
    x[2 * i + 1] = g.a2 * u1 + g.c * Math.sin(u0) + g.b2;
  }
  return { x, n, dim: 2 };
}

/** log p_X(x) = log p_U(g⁻¹(x)) - log|a1 a2| (float64). */
export function unconditionalLogDensity(x0: number, x1: number, g: Map2): number {
  const u0 = (x0 - g.b1) / g.a1;
  const u1 = (x1 - g.b2 - g.c * Math.sin(u0)) / g.a2;
  return logDensityU(u0, u1) - Math.log(Math.abs(g.a1 * g.a2));
}

export interface KlEstimate {
  kl: number;
  /** Monte Carlo standard error. */
  se: number;
}

/** KL(true || flow) = mean of log p(x) - log q(x) over fresh true samples. */
export async function monteCarloKl(flow: Flow, data: FlowData, trueLogDensity: (i: number) => number): Promise<KlEstimate> {
  const q = await flowLogProb(flow, data);
  const diffs = Array.from(q, (v, i) => trueLogDensity(i) - v);
  const s = stat(diffs);
  return { kl: s.mean, se: s.sd / Math.sqrt(s.n) };
}

interface CellResult extends KlEstimate {
  trainSeconds: number;
  finalNll: number;
  /** With early stopping: the steps run, the step whose weights were kept, and its validation NLL (nats/dim). */
  steps?: number;
  bestStep?: number;
  validationNll?: number;
}

interface SettingResults {
  /** Target-only training, per seed. */
  baseline: CellResult[];
  /** The main transfer ('finetune') and the variant ('fresh-head' or 'fresh'), per n_s, per seed. */
  transfer: Record<string, CellResult[]>;
  variant: Record<string, CellResult[]>;
  variantName: string;
}

export interface SecSimulationResults {
  experiment: 'sec-simulation';
  preset: string;
  config: SecSimulationPreset;
  metric: string;
  conditional: SettingResults;
  unconditional: SettingResults;
}

export interface SecSimulationOptions {
  preset: SecSimulationPreset;
  presetName: string;
  out: string;
  log?: (msg: string) => void;
}

export async function runSecSimulation(o: SecSimulationOptions): Promise<string> {
  const p = o.preset;
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  claimResultsFolder(o.out, 'sec-simulation', p);
  const conditionalConfig: FlowConfig = { dim: 2, coupling: 'affine', layers: 4, hidden: p.hidden, scaleBound: 2, condition: { numClasses: K, embedding: 4 } };
  // g⁻¹ is 3 couplings; the law of U is a 4-coupling base flow.
  const unconditionalConfig: FlowConfig = { dim: 2, coupling: 'affine', layers: 3, hidden: p.hidden, scaleBound: 2, base: { layers: 4, hidden: p.hidden } };
  // Both arms of a comparison see the same rows, the same cap and the same stopping rule.
  const train = (flow: Flow, sample: FlowData, steps: number, seed: number, label: string) => {
    const early = p.validationFraction > 0 ? splitFlowData(sample, p.validationFraction, deriveSeed(seed, 7)) : null;
    return trainFlow(flow, early?.train ?? sample, {
      steps, batchSize: p.batchSize, lr: p.lr, seed, label, warmup: Math.min(50, Math.floor(steps / 10)), finalLrFraction: 0.1, clipNorm: 10, logEvery: Math.max(10, Math.floor(steps / 5)),
      ...(early ? { validation: early.validation, validateEvery: p.validateEvery, patience: p.patience } : {}),
    });
  };

  const results: SecSimulationResults = {
    experiment: 'sec-simulation',
    preset: o.presetName,
    config: p,
    metric: `KL(true || model) in nats, Monte Carlo over ${p.evalN} fresh true samples`,
    conditional: { baseline: [], transfer: {}, variant: {}, variantName: 'fresh-head' },
    unconditional: { baseline: [], transfer: {}, variant: {}, variantName: 'fresh g_t' },
  };

  for (const conditional of [true, false]) {
    const setting = conditional ? 'conditional' : 'unconditional';
    const r = conditional ? results.conditional : results.unconditional;
    const config = conditional ? conditionalConfig : unconditionalConfig;
    const draw = (n: number, task: 'source' | 'target', seed: number) =>
      conditional ? sampleConditional(n, SEC_NOISE[task], createRng(seed)) : sampleUnconditional(n, SEC_MAPS[task], createRng(seed));
    const trueLog = (data: FlowData) =>
      conditional
        ? (i: number) => conditionalLogDensity(data.x[2 * i], data.x[2 * i + 1], data.labels![i], SEC_NOISE.target)
        : (i: number) => unconditionalLogDensity(data.x[2 * i], data.x[2 * i + 1], SEC_MAPS.target);
    const evaluate = async (flow: Flow, seed: number, t: FlowTrainResult): Promise<CellResult> => {
      const fresh = draw(p.evalN, 'target', deriveSeed(seed, 99));
      const e = await monteCarloKl(flow, fresh, trueLog(fresh));
      flow.dispose();
      const early = t.validation ? { steps: t.steps, bestStep: t.validation.bestStep, validationNll: t.validation.best } : {};
      return { ...e, trainSeconds: t.seconds, finalNll: t.losses.at(-1)![1], ...early };
    };

    for (const seed of p.seeds) {
      const target = draw(p.nt, 'target', deriveSeed(seed, 1));
      r.baseline.push(
        await cell(o.out, `${setting}-baseline-seed${seed}`, async () => {
          // From scratch on the target; unconditionally with a standard-normal base (the base flow's couplings join g).
          const flow = baselineFlow(conditional ? config : standardBaseConfig(config), deriveSeed(seed, 2));
          return evaluate(flow, seed, await train(flow, target, p.targetSteps, deriveSeed(seed, 3), `${setting} baseline seed ${seed}`));
        }, log),
      );
      for (const ns of p.nsList) {
        let source: Flow | null = null;
        const getSource = async () => {
          if (!source) {
            source = baselineFlow(config, deriveSeed(seed, 4));
            const t = await train(source, draw(ns, 'source', deriveSeed(seed, 1000 + ns)), p.sourceSteps, deriveSeed(seed, 5), `${setting} source n_s=${ns} seed ${seed}`);
            if (t.validation) log(`${setting} source n_s=${ns} seed ${seed}: kept step ${t.validation.bestStep} of ${t.steps} (validation NLL ${t.validation.best.toFixed(4)} nats/dim)`);
          }
          return source;
        };
        const transferCell = (variant: boolean) => async () => {
          const src = await getSource();
          const flow = conditional
            ? conditionalFlowTransfer(src, variant ? 'fresh-head' : 'finetune', deriveSeed(seed, 6))
            : unconditionalFlowTransfer(src, variant ? 'fresh' : 'finetune', deriveSeed(seed, 6));
          return evaluate(flow, seed, await train(flow, target, p.targetSteps, deriveSeed(seed, 3), `${setting} ${variant ? r.variantName : 'transfer'} n_s=${ns} seed ${seed}`));
        };
        (r.transfer[ns] ??= []).push(await cell(o.out, `${setting}-transfer-ns${ns}-seed${seed}`, transferCell(false), log));
        (r.variant[ns] ??= []).push(await cell(o.out, `${setting}-variant-ns${ns}-seed${seed}`, transferCell(true), log));
        (source as Flow | null)?.dispose();
      }
    }
  }
  return writeReport(o.out, results);
}

/** results.json, results.md and kl.svg; returns the Markdown. */
export function writeReport(out: string, r: SecSimulationResults): string {
  writeJson(join(out, 'results.json'), r);
  const c = r.config;
  const lines = [
    `# sec-simulation (preset ${r.preset})`,
    '',
    `Metric: ${r.metric}. Lower is better. n_t = ${c.nt} target samples; seeds ${c.seeds.join(', ')}; source ${c.sourceSteps} steps, target ${c.targetSteps} steps, batch ${c.batchSize}, lr ${c.lr}, conditioner MLP hidden ${c.hidden.join('x')}.`,
    c.validationFraction > 0
      ? `Early stopping: ${Math.round(c.validationFraction * 100)}% of each task's sample (source and target) is held out; its NLL is measured every ${c.validateEvery} steps, training stops after ${c.patience} measurements without improvement, and the best weights are kept, so the step counts are caps.`
      : 'No early stopping: every step of the budget runs.',
    '',
    '- Conditional: x = μ_z + B(ε) in R², 8 classes; h(z) = μ_z shared, B Gaussian on the source and a banana on the target. Transfer freezes the learned condition_embedding.',
    '- Unconditional: X = g(U), U a ring of 6 Gaussians; g_s = identity, g_t(u) = (0.6 u1 + 0.5, 1.4 u2 + 0.6 sin u1 - 0.3). Transfer freezes the learned base flow (law of U) and fits g_t only.',
  ];
  for (const [name, s] of [['Conditional', r.conditional], ['Unconditional', r.unconditional]] as const) {
    const base = stat(s.baseline.map((e) => e.kl));
    lines.push('', `## ${name}`, '', `| n_s | transfer KL | ${s.variantName} KL | no-transfer KL | transfer / no-transfer |`, '|---|---|---|---|---|');
    for (const ns of Object.keys(s.transfer).map(Number).sort((a, b) => a - b)) {
      const t = stat(s.transfer[ns].map((e) => e.kl));
      const v = stat(s.variant[ns].map((e) => e.kl));
      lines.push(`| ${ns} | ${fmtStat(t)} | ${fmtStat(v)} | ${fmtStat(base)} | ${(t.mean / base.mean).toFixed(3)} |`);
    }
    const se = Math.max(...[...s.baseline, ...Object.values(s.transfer).flat()].map((e) => e.se));
    lines.push('', `Largest Monte Carlo standard error of a single KL estimate: ${se.toFixed(4)}.`);
    const kept = (cells: CellResult[]) => (cells.every((e) => e.bestStep !== undefined) ? stat(cells.map((e) => e.bestStep!)).mean.toFixed(0) : null);
    const keptBase = kept(s.baseline);
    if (keptBase !== null) {
      const perNs = Object.keys(s.transfer).map(Number).sort((a, b) => a - b).map((ns) => `${ns}: ${kept(s.transfer[ns])} / ${kept(s.variant[ns])}`);
      lines.push('', `Mean step kept by early stopping: no transfer ${keptBase}; transfer / ${s.variantName} by n_s, ${perNs.join('; ')}.`);
    }
  }
  const md = `${lines.join('\n')}\n`;
  writeFileAtomic(join(out, 'results.md'), md);
  const series = [];
  for (const [name, s] of [['conditional', r.conditional], ['unconditional', r.unconditional]] as const) {
    const nsList = Object.keys(s.transfer).map(Number).sort((a, b) => a - b);
    const base = stat(s.baseline.map((e) => e.kl)).mean;
    series.push(
      { name: `${name} transfer`, points: nsList.map((x) => ({ x, y: stat(s.transfer[x].map((e) => e.kl)).mean, spread: stat(s.transfer[x].map((e) => e.kl)).sd })) },
      { name: `${name} no transfer`, points: nsList.map((x) => ({ x, y: base })), dashed: true },
    );
  }
  writeFileAtomic(join(out, 'kl.svg'), lineChartSvg('sec-simulation: KL(true || model) on the target vs n_s', 'source size n_s', 'KL (nats)', series, { logX: true }));
  return md;
}
