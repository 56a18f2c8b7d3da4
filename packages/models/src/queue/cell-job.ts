/**
 * A queued cell: which experiment (name, preset and overrides, as on the command line), which
 * results folder (a plain name under the worker's --results) and which cell of its plan. The
 * queue carries nothing else: a worker checks every field against the runner's own tables
 * before any work, and runs only the runner's cell function on them.
 */
import { join } from 'node:path';
import { FAMILIES, MNIST_USPS_PRESETS, mnistUspsOptions, type Family } from '../experiments/index.js';
import { mnistUspsClasses } from '../experiments/mnist-usps.js';
import { planTransferCells } from '../experiments/transfer-plan.js';
import { ARMS, type Arm } from '../experiments/transfer-summary.js';

/** The experiments a queue runs: the transfer experiments, made of cells. */
export const QUEUE_EXPERIMENTS = ['mnist-usps-conditional', 'mnist-usps-digit3'] as const;
export type QueueExperiment = (typeof QUEUE_EXPERIMENTS)[number];

export const QUEUE_NAME = 'transfuse-cells';

/** The settings shared by every cell of one grid. */
export interface GridSettings {
  experiment: QueueExperiment;
  preset: string;
  ns?: number[];
  families?: Family[];
  seeds?: number[];
  nt?: (number | 'all')[];
  arms?: Arm[];
  sourceCap?: number;
  targetCap?: number;
  targetCheckEpochs?: number;
  targetEma?: number;
  targetLr?: number;
  targetActnormPrior?: number;
  /** The results folder's name, under each worker's --results folder. */
  folder: string;
}

export interface CellJob extends GridSettings {
  cell: string;
}

/** A results folder's name: no separators, no leading dot, so it stays under --results. */
const FOLDER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const CELL = /^[a-z0-9-]{1,100}$/;

/** The job's id: one job per cell of one folder, so adding a cell twice adds it once. */
export const jobId = (folder: string, cell: string): string => `${folder}+${cell}`;

export function checkFolderName(folder: string): string {
  if (!FOLDER.test(folder)) throw new Error(`results folder name '${folder}' must be letters, digits, '.', '_' or '-' (not starting with '.'), at most 100 characters`);
  return folder;
}

const isIntList = (x: unknown): x is number[] => Array.isArray(x) && x.length > 0 && x.every((n) => Number.isSafeInteger(n) && n >= 1 && n <= 1_000_000) && new Set(x).size === x.length;

/** Checks a job's data field by field (nothing is run for a job that fails); returns it typed. */
export function checkCellJob(data: unknown): CellJob {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('job data must be an object');
  const d = data as Record<string, unknown>;
  const extra = Object.keys(d).filter((k) => !['experiment', 'preset', 'ns', 'families', 'seeds', 'nt', 'arms', 'sourceCap', 'targetCap', 'targetCheckEpochs', 'targetEma', 'targetLr', 'targetActnormPrior', 'folder', 'cell'].includes(k));
  if (extra.length) throw new Error(`job data has unknown field(s) ${extra.join(', ')}`);
  if (!QUEUE_EXPERIMENTS.includes(d.experiment as QueueExperiment)) throw new Error(`job experiment must be one of ${QUEUE_EXPERIMENTS.join(', ')}, got ${JSON.stringify(d.experiment)}`);
  if (typeof d.preset !== 'string' || !(d.preset in MNIST_USPS_PRESETS)) throw new Error(`job preset must be one of ${Object.keys(MNIST_USPS_PRESETS).join(', ')}, got ${JSON.stringify(d.preset)}`);
  if (d.ns !== undefined && !isIntList(d.ns)) throw new Error(`job ns must be distinct whole numbers from 1 to 1000000, got ${JSON.stringify(d.ns)}`);
  if (d.families !== undefined && !(Array.isArray(d.families) && d.families.length > 0 && d.families.every((f) => FAMILIES.includes(f)) && new Set(d.families).size === d.families.length)) {
    throw new Error(`job families must be distinct names of ${FAMILIES.join(', ')}, got ${JSON.stringify(d.families)}`);
  }
  if (d.seeds !== undefined && !(Array.isArray(d.seeds) && d.seeds.length > 0 && d.seeds.every((x) => Number.isSafeInteger(x) && x >= 0) && new Set(d.seeds).size === d.seeds.length)) {
    throw new Error(`job seeds must be distinct whole numbers of at least 0, got ${JSON.stringify(d.seeds)}`);
  }
  if (d.nt !== undefined && !(Array.isArray(d.nt) && d.nt.length > 0 && d.nt.every((x) => x === 'all' || (Number.isSafeInteger(x) && x >= 2 && x <= 1_000_000)) && new Set(d.nt).size === d.nt.length)) {
    throw new Error(`job nt must be distinct whole numbers from 2 to 1000000 or 'all', got ${JSON.stringify(d.nt)}`);
  }
  if (d.arms !== undefined && !(Array.isArray(d.arms) && d.arms.length > 0 && d.arms.every((a) => ARMS.includes(a)) && new Set(d.arms).size === d.arms.length)) {
    throw new Error(`job arms must be distinct names of ${ARMS.join(', ')}, got ${JSON.stringify(d.arms)}`);
  }
  for (const k of ['sourceCap', 'targetCap', 'targetCheckEpochs'] as const) {
    if (d[k] !== undefined && !(Number.isSafeInteger(d[k]) && (d[k] as number) >= 1)) throw new Error(`job ${k} must be a whole number of at least 1, got ${JSON.stringify(d[k])}`);
  }
  if (d.targetEma !== undefined && !(typeof d.targetEma === 'number' && d.targetEma > 0 && d.targetEma < 1)) throw new Error(`job targetEma must be a decay between 0 and 1 (exclusive), got ${JSON.stringify(d.targetEma)}`);
  if (d.targetLr !== undefined && !(typeof d.targetLr === 'number' && d.targetLr > 0 && d.targetLr <= 1)) throw new Error(`job targetLr must be a learning rate above 0 and at most 1, got ${JSON.stringify(d.targetLr)}`);
  if (d.targetActnormPrior !== undefined && !(typeof d.targetActnormPrior === 'number' && d.targetActnormPrior >= 0 && Number.isFinite(d.targetActnormPrior))) throw new Error(`job targetActnormPrior must be a number of images >= 0, got ${JSON.stringify(d.targetActnormPrior)}`);
  if (typeof d.folder !== 'string') throw new Error(`job folder must be a folder name, got ${JSON.stringify(d.folder)}`);
  checkFolderName(d.folder);
  if (typeof d.cell !== 'string' || !CELL.test(d.cell)) throw new Error(`job cell must be a cell id (lower-case letters, digits and '-'), got ${JSON.stringify(d.cell)}`);
  const job = d as unknown as CellJob;
  // Every n_s is its own cell when the source is taken as unbounded: this plan holds every id the real one can.
  const o = mnistUspsOptions({ ...overridesOf(job), preset: job.preset, dataDir: '', out: '', log: () => {} }, job.experiment === 'mnist-usps-conditional');
  if (!planTransferCells({ ...o.preset, conditional: o.conditional }, Infinity, mnistUspsClasses(o.conditional)).cells.some((c) => c.id === job.cell)) throw new Error(`job cell '${job.cell}' is not a cell of ${job.experiment} preset ${job.preset}`);
  return job;
}

/** The grid's settings as the mnist-usps runner takes them, on the folder under `results`. */
export function gridOptions(g: GridSettings, dataDir: string, results: string, log: (m: string) => void) {
  return mnistUspsOptions({ ...overridesOf(g), preset: g.preset, dataDir, out: join(results, checkFolderName(g.folder)), log }, g.experiment === 'mnist-usps-conditional');
}

const overridesOf = (g: GridSettings) => ({ ns: g.ns, families: g.families, seeds: g.seeds, nt: g.nt, arms: g.arms, sourceCap: g.sourceCap, targetCap: g.targetCap, targetCheckEpochs: g.targetCheckEpochs, targetEma: g.targetEma, targetLr: g.targetLr, targetActnormPrior: g.targetActnormPrior });

/** A grid's settings alone (a job's data minus its cell), in a fixed order. */
export const gridOf = (g: GridSettings): GridSettings => ({ experiment: g.experiment, preset: g.preset, ...overridesOf(g), folder: g.folder });

/** Equal for the jobs of one grid. */
export const gridKey = (g: GridSettings): string => JSON.stringify(gridOf(g));
