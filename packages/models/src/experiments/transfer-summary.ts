/**
 * The tables a transfer experiment reports, computed from its cells (pure, browser-safe): mean ±
 * sd over seeds per arm, the paired differences transfer minus baseline and transfer minus the
 * compute-matched baseline (same seed, same target data), and the trend in n_s beyond spread.
 */
import { pairedDifference, stat, trendBeyondSpread, type PairedDifference, type Stat, type Trend } from '../metrics/statistics.js';
import type { Family, TrainRecord } from './families.js';

/**
 * The arms of a comparison: 'transfer' (the main procedure), 'variant' (the family's second
 * procedure), 'baseline' (the target alone, stopped by its own validation loss) and 'matched'
 * (the target alone, given the transfer arm's total steps: source plus target).
 */
export const ARMS = ['transfer', 'variant', 'baseline', 'matched'] as const;
export type Arm = (typeof ARMS)[number];

/** An `--arms` list, checked: known and distinct names, and 'matched' only beside a transfer arm, whose total steps it is given. */
export function checkArms(arms: readonly string[]): Arm[] {
  if (!arms.length || arms.some((a) => !(ARMS as readonly string[]).includes(a)) || new Set(arms).size !== arms.length) throw new Error(`--arms takes distinct names of ${ARMS.join(', ')}, got '${arms.join(',')}'`);
  if (arms.includes('matched') && !arms.includes('transfer') && !arms.includes('variant')) throw new Error("--arms: 'matched' needs 'transfer' or 'variant', whose total steps it is given");
  return arms as Arm[];
}

export interface CellResult {
  family: Family;
  arm: Arm;
  seed: number;
  /** Requested target size ('all' for the whole training split) and the images it gave. */
  nt: string;
  ntUsed: number;
  /** Source size (null for the baseline). */
  ns: number | null;
  /** W1 between generated and held-out target images, pixels on the [0, 1] scale. */
  w1: number;
  perClass: Record<string, number>;
  /** Class fidelity: share of generated images the target classifier assigns to their class. */
  classAccuracy?: number;
  perClassAccuracy?: Record<string, number>;
  bitsPerDim?: number;
  target: TrainRecord;
  source?: TrainRecord;
  /** Steps and images of the whole arm (source pre-training included). */
  totalSteps: number;
  totalImages: number;
}

export interface ArmSummary {
  w1: Stat;
  classAccuracy?: Stat;
  /** Flows: held-out bits/dim (lower is better). */
  bitsPerDim?: Stat;
  totalSteps: Stat;
  totalImages: Stat;
}

export interface SummaryRow {
  family: Family;
  nt: string;
  ntUsed: number;
  ns: number;
  /** The arm compared against the baselines ('transfer', else 'variant'). */
  transferArm: Arm;
  arms: Partial<Record<Arm, ArmSummary>>;
  /** transferArm minus baseline W1, paired by seed. */
  vsBaseline?: PairedDifference;
  /** transferArm minus compute-matched baseline W1, paired by seed. */
  vsMatched?: PairedDifference;
  /** The same two differences of class fidelity (where every cell has one). */
  accVsBaseline?: PairedDifference;
  accVsMatched?: PairedDifference;
  /** The same two differences of held-out bits/dim (flows). */
  bpdVsBaseline?: PairedDifference;
  bpdVsMatched?: PairedDifference;
}

export interface TrendRow {
  family: Family;
  nt: string;
  arm: Arm;
  metric: 'w1' | 'classAccuracy' | 'bitsPerDim';
  trend: Trend;
}

const key = (v: number | string | null) => String(v);
const classAccuracy = (c: CellResult) => c.classAccuracy;
const bitsPerDim = (c: CellResult) => c.bitsPerDim;

/** A metric's mean ± sd over the cells, where every cell has it. */
function statOf(cells: CellResult[], metric: (c: CellResult) => number | undefined): Stat | undefined {
  const values = cells.map(metric).filter((x): x is number => x !== undefined);
  return values.length === cells.length ? stat(values) : undefined;
}

function armSummary(cells: CellResult[]): ArmSummary {
  const [acc, bpd] = [statOf(cells, classAccuracy), statOf(cells, bitsPerDim)];
  return {
    w1: stat(cells.map((c) => c.w1)),
    ...(acc ? { classAccuracy: acc } : {}),
    ...(bpd ? { bitsPerDim: bpd } : {}),
    totalSteps: stat(cells.map((c) => c.totalSteps)),
    totalImages: stat(cells.map((c) => c.totalImages)),
  };
}

/** Paired a - b of a metric (W1 unless given) over the seeds both hold; none when a cell lacks the metric. */
function paired(a: CellResult[], b: CellResult[], metric: (c: CellResult) => number | undefined = (c) => c.w1): PairedDifference | undefined {
  if ([...a, ...b].some((c) => metric(c) === undefined)) return undefined;
  const bySeed = new Map(b.map((c) => [c.seed, metric(c)!]));
  const both = a.filter((c) => bySeed.has(c.seed)).sort((x, y) => x.seed - y.seed);
  return both.length ? pairedDifference(both.map((c) => metric(c)!), both.map((c) => bySeed.get(c.seed)!)) : undefined;
}

export function summarize(cells: CellResult[]): { rows: SummaryRow[]; trends: TrendRow[] } {
  const rows: SummaryRow[] = [];
  const trends: TrendRow[] = [];
  const families = [...new Set(cells.map((c) => c.family))];
  for (const family of families) {
    const fc = cells.filter((c) => c.family === family);
    const nts = [...new Set(fc.map((c) => c.nt))].sort((a, b) => (a === 'all' ? 1 : b === 'all' ? -1 : Number(a) - Number(b)));
    for (const nt of nts) {
      const at = fc.filter((c) => c.nt === nt);
      const transferArm: Arm = at.some((c) => c.arm === 'transfer') ? 'transfer' : 'variant';
      const baseline = at.filter((c) => c.arm === 'baseline');
      const nsList = [...new Set(at.filter((c) => c.ns !== null).map((c) => c.ns!))].sort((a, b) => a - b);
      for (const ns of nsList) {
        const arms: Partial<Record<Arm, ArmSummary>> = {};
        const of = (arm: Arm) => at.filter((c) => c.arm === arm && (arm === 'baseline' || key(c.ns) === key(ns)));
        for (const arm of ARMS) if (of(arm).length) arms[arm] = armSummary(of(arm));
        const t = of(transferArm);
        const vs = (other: CellResult[], metric: (c: CellResult) => number | undefined) => (t.length && other.length ? paired(t, other, metric) : undefined);
        const [accVsBaseline, accVsMatched] = [vs(baseline, classAccuracy), vs(of('matched'), classAccuracy)];
        const [bpdVsBaseline, bpdVsMatched] = [vs(baseline, bitsPerDim), vs(of('matched'), bitsPerDim)];
        rows.push({
          family,
          nt,
          ntUsed: at[0].ntUsed,
          ns,
          transferArm,
          arms,
          ...(t.length && baseline.length ? { vsBaseline: paired(t, baseline) } : {}),
          ...(t.length && of('matched').length ? { vsMatched: paired(t, of('matched')) } : {}),
          ...(accVsBaseline ? { accVsBaseline } : {}),
          ...(accVsMatched ? { accVsMatched } : {}),
          ...(bpdVsBaseline ? { bpdVsBaseline } : {}),
          ...(bpdVsMatched ? { bpdVsMatched } : {}),
        });
      }
      const mine = rows.filter((r) => r.family === family && r.nt === nt);
      for (const arm of ['transfer', 'variant'] as const) {
        const pts = mine.map((r) => r.arms[arm]).filter((a): a is ArmSummary => !!a);
        if (pts.length < 2) continue;
        trends.push({ family, nt, arm, metric: 'w1', trend: trendBeyondSpread(pts.map((p) => p.w1)) });
        if (pts.every((p) => p.classAccuracy)) {
          // Accuracy rises where W1 falls: negate it so 'falling' means improving in both.
          const t = trendBeyondSpread(pts.map((p) => ({ ...p.classAccuracy!, mean: -p.classAccuracy!.mean })));
          trends.push({ family, nt, arm, metric: 'classAccuracy', trend: t === 'falling' ? 'rising' : t === 'rising' ? 'falling' : t });
        }
        if (pts.every((p) => p.bitsPerDim)) trends.push({ family, nt, arm, metric: 'bitsPerDim', trend: trendBeyondSpread(pts.map((p) => p.bitsPerDim!)) });
      }
    }
  }
  return { rows, trends };
}

/** The cells where the transfer arm beats both the baseline and the compute-matched baseline beyond seed spread. */
export function winsBeyondSpread(rows: SummaryRow[]): SummaryRow[] {
  return rows.filter((r) => r.vsBaseline?.verdict === 'a lower' && r.vsMatched?.verdict === 'a lower');
}

/**
 * The seeds of a cell (family, n_t, n_s) whose target-only runs, the baseline or the matched
 * baseline, kept their starting weights: a random initialisation that training on the target
 * never improved (on validation). Beating such a run is beating an untrained model.
 */
export function untrainedBaselineSeeds(cells: CellResult[], at: { family: Family; nt: string; ns: number }): number[] {
  const untrained = cells.filter((c) => c.family === at.family && c.nt === at.nt && (c.arm === 'baseline' || (c.arm === 'matched' && c.ns === at.ns)) && c.target.curve.length > 1 && c.target.bestStep === 0);
  return [...new Set(untrained.map((c) => c.seed))].sort((a, b) => a - b);
}

/** The cells where the transfer arm's class fidelity is above both baselines' beyond seed spread. */
export function fidelityWinsBeyondSpread(rows: SummaryRow[]): SummaryRow[] {
  return rows.filter((r) => r.accVsBaseline?.verdict === 'a higher' && r.accVsMatched?.verdict === 'a higher');
}

/** The cells where the transfer arm's held-out bits/dim are below both baselines' beyond seed spread (flows). */
export function likelihoodWinsBeyondSpread(rows: SummaryRow[]): SummaryRow[] {
  return rows.filter((r) => r.bpdVsBaseline?.verdict === 'a lower' && r.bpdVsMatched?.verdict === 'a lower');
}

/** A training run whose budget the report questions (see unconvergedRuns and runsKeptAtFirstCheck). */
export interface FlaggedRun {
  family: Family;
  /** 'source' for a pre-training run (listed once, though every transfer cell of it reads it). */
  run: 'source' | Arm;
  seed: number;
  nt: string | null;
  ns: number | null;
  steps: number;
  bestStep: number;
}

/** The budgets a run was given: its family's caps and checks (the matched arm's cap is its transfer arm's total). */
export interface RunBudgets {
  source: { cap: number; validateEvery: number; patience: number };
  target: { cap: number; validateEvery: number; patience: number };
}

/** The runs of the cells that `flagged` picks: each source once (every transfer cell of it reads it), then each target run. */
function flagRuns(cells: CellResult[], flagged: (r: TrainRecord, c: CellResult, run: 'source' | 'target') => boolean): FlaggedRun[] {
  const out: FlaggedRun[] = [];
  const sources = new Set<string>();
  for (const c of cells) {
    const sourceKey = `${c.family}/${c.seed}/${c.ns}`;
    if (c.source && !sources.has(sourceKey) && flagged(c.source, c, 'source')) {
      sources.add(sourceKey);
      out.push({ family: c.family, run: 'source', seed: c.seed, nt: null, ns: c.ns, steps: c.source.steps, bestStep: c.source.bestStep });
    }
    if (flagged(c.target, c, 'target')) out.push({ family: c.family, run: c.arm, seed: c.seed, nt: c.nt, ns: c.ns, steps: c.target.steps, bestStep: c.target.bestStep });
  }
  return out;
}

/**
 * The runs a cap ended before their validation loss did: at the cap, with the best step less than
 * `patience` checks before it (early stopping had not run out, so the loss may still fall). A
 * comparison against such a run measures the budget, not what the data can teach.
 */
export function unconvergedRuns(cells: CellResult[], budgets: Partial<Record<Family, RunBudgets>>): FlaggedRun[] {
  return flagRuns(cells, (r, c, run) => {
    const b = budgets[c.family];
    if (!b) return false;
    const check = run === 'source' ? b.source : b.target;
    // The matched arm's cap is its transfer arm's total steps.
    const transfer = c.arm === 'matched' && run === 'target' ? cells.find((t) => (t.arm === 'transfer' || t.arm === 'variant') && t.family === c.family && t.seed === c.seed && t.nt === c.nt && t.ns === c.ns) : undefined;
    const cap = run === 'source' ? b.source.cap : (transfer?.totalSteps ?? b.target.cap);
    // Patience is a number of steps (patience x validateEvery) whatever the run's check interval.
    return r.steps >= cap && r.steps - r.bestStep < check.patience * check.validateEvery;
  });
}

/**
 * The runs that kept their first validation check although they ran past it, with no check at step
 * 0 before it: their best weights may lie before that check (a small set can be overfit within
 * `validateEvery` steps, and for a transferred model the start itself may be best), so the check
 * interval, not the data, chose them.
 */
export function runsKeptAtFirstCheck(cells: CellResult[]): FlaggedRun[] {
  return flagRuns(cells, (r) => r.curve.length > 1 && r.bestStep === r.curve[0][0] && r.bestStep > 0);
}

/**
 * The runs whose starting weights scored best (a check at step 0 came first): training never
 * improved their validation loss. For a transfer arm this is a result, not a budget: the source
 * model, untouched on the target, was the best candidate.
 */
export function runsKeptStart(cells: CellResult[]): FlaggedRun[] {
  return flagRuns(cells, (r) => r.curve.length > 1 && r.bestStep === 0);
}
