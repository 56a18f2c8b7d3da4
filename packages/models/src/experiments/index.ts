/** The experiment registry used by `transfuse experiment NAME --preset P` and `transfuse demo`. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHENG_RESTORATION_PRESETS, CHENG_SYNTHETIC_PRESETS, runChengRestoration, runChengSynthetic } from './cheng/index.js';
import { FAMILIES, MNIST_USPS_PRESETS, mnistUspsExperiment, runMnistUsps, withBudgets, type BudgetOverrides, type Family, type MnistUspsOptions } from './mnist-usps.js';
import { SEC_SIMULATION_PRESETS, runSecSimulation } from './sec-simulation.js';
import { checkArms, type Arm } from './transfer-summary.js';
import { ACTNORM_INIT_IMAGES } from './families.js';

export interface ExperimentRun extends BudgetOverrides {
  preset: string;
  dataDir: string;
  out: string;
  log: (msg: string) => void;
  /** mnist-usps only: replace the preset's source sizes, model families, seeds, target sizes or arms (`--ns`, `--families`, `--seeds`, `--nt`, `--arms`), or its budgets. */
  ns?: number[];
  families?: Family[];
  seeds?: number[];
  nt?: (number | 'all')[];
  arms?: Arm[];
  /** mnist-usps only: a results folder whose source cells this run takes (`--sources-from`). */
  sourcesFrom?: string;
}

/** Each experiment runs with a preset and returns its Markdown table. */
export const EXPERIMENTS: Record<string, { presets: string[]; takesOverrides?: true; run: (r: ExperimentRun) => Promise<string> }> = {
  'mnist-usps-conditional': { presets: Object.keys(MNIST_USPS_PRESETS), takesOverrides: true, run: (r) => mnistUsps(r, true) },
  'mnist-usps-digit3': { presets: Object.keys(MNIST_USPS_PRESETS), takesOverrides: true, run: (r) => mnistUsps(r, false) },
  'cheng-synthetic': {
    presets: Object.keys(CHENG_SYNTHETIC_PRESETS),
    run: (r) => runChengSynthetic({ preset: pick(CHENG_SYNTHETIC_PRESETS, r.preset), presetName: r.preset, out: r.out, log: r.log }),
  },
  'cheng-restoration': {
    presets: Object.keys(CHENG_RESTORATION_PRESETS),
    run: (r) =>
      runChengRestoration({ preset: pick(CHENG_RESTORATION_PRESETS, r.preset), presetName: r.preset, dataDir: r.dataDir, out: r.out, log: r.log }),
  },
  'sec-simulation': {
    presets: Object.keys(SEC_SIMULATION_PRESETS),
    run: (r) => runSecSimulation({ preset: pick(SEC_SIMULATION_PRESETS, r.preset), presetName: r.preset, out: r.out, log: r.log }),
  },
};

function pick<T>(table: Record<string, T>, name: string): T {
  const p = table[name];
  if (!p) throw new Error(`unknown preset '${name}' (use ${Object.keys(table).join(', ')})`);
  return p;
}

/** The mnist-usps settings of a run: the preset with the `--ns`, `--families`, `--seeds`, `--nt` and cap overrides, checked. */
export function mnistUspsOptions(r: ExperimentRun, conditional: boolean): MnistUspsOptions {
  if (r.ns?.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--ns must list positive whole numbers, got ${r.ns.join(',')}`);
  const unknown = r.families?.filter((f) => !FAMILIES.includes(f));
  if (unknown?.length) throw new Error(`--families takes ${FAMILIES.join(' and/or ')}, got '${unknown.join(',')}'`);
  const base = pick(MNIST_USPS_PRESETS, r.preset);
  // The folder's config.json records the changed preset, so such a run cannot mix with the plain one.
  if (r.seeds?.some((x) => !Number.isSafeInteger(x) || x < 0)) throw new Error(`--seeds must list whole numbers of at least 0, got ${r.seeds.join(',')}`);
  if (r.nt?.some((x) => x !== 'all' && (!Number.isInteger(x) || x < 2))) throw new Error(`--nt must list whole numbers of at least 2 or 'all', got ${r.nt.join(',')}`);
  const preset = { ...withBudgets(base, r), nsList: r.ns ?? base.nsList, seeds: r.seeds ?? base.seeds, ntList: r.nt ?? base.ntList };
  for (const f of r.families ?? []) if (!base[f]) throw new Error(`--families: preset '${r.preset}' has no ${f} settings (it runs ${FAMILIES.filter((x) => base[x]).join(', ')})`);
  for (const f of FAMILIES) if (r.families && !r.families.includes(f)) delete preset[f];
  if (r.targetActnormPrior !== undefined && !preset.flow) throw new Error(`--target-actnorm-prior sets the flows' ActNorm init; --families ${r.families!.join(',')} runs no flows`);
  if (r.arms) {
    const arms = checkArms(r.arms);
    // withBudgets returned a copy of the preset: changing its arms leaves the table alone.
    for (const f of FAMILIES) if (preset[f]) preset[f]!.arms = [...arms];
  }
  const changes = [
    r.ns && `n_s ${r.ns.join(', ')}`,
    r.families && r.families.join(' and '),
    r.seeds && `seeds ${r.seeds.join(', ')}`,
    r.nt && `n_t ${r.nt.join(', ')}`,
    r.arms && `arms ${r.arms.join(', ')}`,
    r.sourceCap && `source cap ${r.sourceCap}`,
    r.targetCap && `target cap ${r.targetCap}`,
    r.targetCheckEpochs && `target checks from step 0, every ${r.targetCheckEpochs} epochs at most`,
    r.targetEma && `target weights averaged (EMA ${r.targetEma})`,
    r.targetLr && `target learning rate ${r.targetLr}`,
    r.targetActnormPrior !== undefined && `target flows' ActNorm set from up to ${ACTNORM_INIT_IMAGES} images, prior ${r.targetActnormPrior}`,
  ].filter(Boolean);
  const presetName = changes.length ? `${r.preset}, ${changes.join('; ')}` : r.preset;
  return { preset, presetName, conditional, dataDir: r.dataDir, out: r.out, log: r.log, ...(r.sourcesFrom ? { sourcesFrom: r.sourcesFrom } : {}) };
}

async function mnistUsps(r: ExperimentRun, conditional: boolean): Promise<string> {
  await runMnistUsps(mnistUspsOptions(r, conditional));
  return readFileSync(join(r.out, 'results.md'), 'utf8');
}

export async function runExperiment(name: string, r: ExperimentRun): Promise<string> {
  const e = EXPERIMENTS[name];
  if (!e) throw new Error(`unknown experiment '${name}' (use ${Object.keys(EXPERIMENTS).join(', ')})`);
  if (!e.presets.includes(r.preset)) throw new Error(`experiment '${name}' has no preset '${r.preset}' (use ${e.presets.join(', ')})`);
  if ((r.ns || r.families || r.seeds || r.nt || r.arms || r.sourceCap || r.targetCap || r.targetCheckEpochs || r.targetEma || r.targetLr || r.targetActnormPrior !== undefined || r.sourcesFrom) && !e.takesOverrides) throw new Error(`--ns, --families, --seeds, --nt, --arms and the budget flags apply to the mnist-usps experiments, not '${name}'`);
  return e.run(r);
}

export { runAllCells, runTransferExperiment, TransferExperiment, PROTOCOL_VERSION } from './transfer-experiment.js';
export { planTransferCells, type PlannedCell, type TransferPlan } from './transfer-plan.js';
export type { FamilyProtocol, TransferExperimentOptions, TransferProtocol, TransferResults } from './transfer-experiment.js';
export { ARMS, summarize, winsBeyondSpread } from './transfer-summary.js';
export type { Arm, ArmSummary, CellResult, SummaryRow, TrendRow } from './transfer-summary.js';
export { FAMILIES, TrainingInterrupted, diffusionFamily, flowFamily } from './families.js';
export type { CellTrainOptions, Family, Generative, TrainingBudget, TrainRecord } from './families.js';
export { parseTransferArgs, transferCli, TRANSFER_USAGE } from './transfer-cli.js';
export {
  CHENG_RESTORATION_PRESETS,
  CHENG_SYNTHETIC_PRESETS,
  MNIST_USPS_PRESETS,
  SEC_SIMULATION_PRESETS,
  runChengRestoration,
  runChengSynthetic,
  mnistUspsExperiment,
  runMnistUsps,
  withBudgets,
  runSecSimulation,
};
