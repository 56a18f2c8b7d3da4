/** Which runs a cap cut while still improving, which kept their first check, and the flows' bits/dim statistics, on cells written by hand. */
import { describe, expect, it } from 'vitest';
import type { TrainRecord } from '../src/experiments/families.js';
import { likelihoodWinsBeyondSpread, runsKeptAtFirstCheck, runsKeptStart, summarize, unconvergedRuns, untrainedBaselineSeeds, type CellResult } from '../src/experiments/transfer-summary.js';

const rec = (steps: number, bestStep: number): TrainRecord => ({ steps, bestStep, images: steps * 32, curve: [], seconds: 0 });

function cell(arm: CellResult['arm'], seed: number, nt: string, ns: number | null, target: TrainRecord, source?: TrainRecord): CellResult {
  const totalSteps = target.steps + (source?.steps ?? 0);
  return { family: 'diffusion', arm, seed, nt, ntUsed: 100, ns, w1: 1, perClass: {}, target, ...(source ? { source } : {}), totalSteps, totalImages: totalSteps * 32 };
}

// Caps 2,000 (source) and 1,500 (target); patience x validateEvery = 800 and 500 steps.
const budgets = { diffusion: { source: { cap: 2000, validateEvery: 200, patience: 4 }, target: { cap: 1500, validateEvery: 100, patience: 5 } } };

describe('unconvergedRuns', () => {
  it('lists a capped source once, however many cells read it, and only while it could still improve', () => {
    const still = rec(2000, 2000);
    const done = rec(2000, 1200); // 800 steps past its best: early stopping had run out at the cap
    const cells = [
      cell('transfer', 0, '100', 60000, rec(800, 300), still),
      cell('transfer', 0, 'all', 60000, rec(900, 400), still),
      cell('transfer', 1, '100', 60000, rec(800, 300), done),
      cell('transfer', 1, '100', 100, rec(700, 200), rec(1600, 800)),
    ];
    expect(unconvergedRuns(cells, budgets)).toEqual([{ family: 'diffusion', run: 'source', seed: 0, nt: null, ns: 60000, steps: 2000, bestStep: 2000 }]);
  });

  it('reads the target cap for transfer and baseline, and the transfer total for matched', () => {
    const source = rec(1600, 800);
    const cells = [
      cell('baseline', 0, '100', null, rec(1000, 500)), // stopped early
      cell('baseline', 1, '100', null, rec(1500, 1100)), // at the cap, 400 < 500 steps past its best
      cell('transfer', 0, '100', 100, rec(600, 100), source), // total 2,200
      cell('matched', 0, '100', 100, rec(2200, 500)), // the old rule ran it to its cap, far past its best
      cell('transfer', 1, '100', 100, rec(700, 200), source), // total 2,300
      cell('matched', 1, '100', 100, rec(2300, 2000)), // at its cap, 300 steps past its best
    ];
    expect(unconvergedRuns(cells, budgets).map((u) => `${u.run} seed ${u.seed} ${u.bestStep}/${u.steps}`)).toEqual(['baseline seed 1 1100/1500', 'matched seed 1 2000/2300']);
  });

  it('counts patience in steps, however dense the checks of a run', () => {
    // Checks every 10 steps, patience 5 x 100 = 500 steps: 400 steps past its best at the cap of 1,500 could still improve.
    const dense = (steps: number, bestStep: number): TrainRecord => ({ ...rec(steps, bestStep), validateEvery: 10 });
    const cells = [cell('baseline', 0, '100', null, dense(1500, 1100)), cell('baseline', 1, '100', null, dense(1500, 1000))];
    expect(unconvergedRuns(cells, budgets).map((u) => u.seed)).toEqual([0]);
  });

  it('ignores families without budgets', () => {
    expect(unconvergedRuns([cell('baseline', 0, '100', null, rec(1500, 1500))], {})).toEqual([]);
  });
});

describe('runsKeptAtFirstCheck', () => {
  const curve = (every: number, n: number): [number, number][] => Array.from({ length: n }, (_, i) => [every * (i + 1), 1]);
  const run = (steps: number, bestStep: number, every: number): TrainRecord => ({ ...rec(steps, bestStep), curve: curve(every, steps / every) });

  it('lists runs whose best is their first check, not runs that stopped there or improved later', () => {
    const source = run(600, 100, 100); // kept its first check: listed once for both cells that read it
    const cells = [
      cell('baseline', 0, '100', null, run(450, 50, 50)), // kept step 50 of checks every 50 steps
      cell('variant', 0, '100', 100, run(450, 100, 50), source), // kept its second check
      cell('variant', 0, 'all', 100, run(1500, 1500, 50), source),
      cell('baseline', 1, '100', null, { ...rec(50, 50), curve: curve(50, 1) }), // one check: nothing to compare
    ];
    expect(runsKeptAtFirstCheck(cells).map((u) => `${u.run} seed ${u.seed} n_t=${u.nt} ${u.bestStep}/${u.steps}`)).toEqual(['baseline seed 0 n_t=100 50/450', 'source seed 0 n_t=null 100/600']);
  });

  it('does not list runs checked at step 0 first: keeping the start is a result, listed by runsKeptStart', () => {
    const fromStart = (steps: number, bestStep: number, every: number): TrainRecord => ({ ...rec(steps, bestStep), curve: [[0, 1], ...curve(every, steps / every)], validateEvery: every });
    const cells = [
      cell('transfer', 0, '100', 100, fromStart(60, 0, 10), rec(1600, 800)), // fine-tuning never beat the untouched source model
      cell('baseline', 0, '100', null, fromStart(100, 10, 10)), // its first check after the start: the start was worse
      cell('transfer', 1, '100', 100, run(450, 50, 50), rec(1600, 800)), // no step-0 check: still the interval's choice
    ];
    expect(runsKeptAtFirstCheck(cells).map((u) => `${u.run} seed ${u.seed}`)).toEqual(['transfer seed 1']);
    expect(runsKeptStart(cells).map((u) => `${u.run} seed ${u.seed} ${u.bestStep}/${u.steps}`)).toEqual(['transfer seed 0 0/60']);
  });

  it('names the seeds of a cell whose baseline or matched baseline kept its random initialisation', () => {
    const fromStart = (steps: number, bestStep: number): TrainRecord => ({ ...rec(steps, bestStep), curve: [[0, 1], ...curve(5, steps / 5)], validateEvery: 5 });
    const cells = [
      cell('baseline', 0, '100', null, fromStart(400, 0)), // untrained: counts for every n_s of n_t = 100
      cell('matched', 1, '100', 100, fromStart(400, 0)), // untrained, but only the n_s = 100 cell's
      cell('baseline', 1, '100', null, fromStart(415, 15)),
      cell('transfer', 2, '100', 100, fromStart(400, 0)), // a transfer arm keeping the source is a result, not an untrained baseline
      cell('baseline', 2, 'all', null, fromStart(400, 0)), // another n_t
    ];
    expect(untrainedBaselineSeeds(cells, { family: 'diffusion', nt: '100', ns: 100 })).toEqual([0, 1]);
    expect(untrainedBaselineSeeds(cells, { family: 'diffusion', nt: '100', ns: 60000 })).toEqual([0]);
    expect(untrainedBaselineSeeds(cells, { family: 'flow', nt: '100', ns: 100 })).toEqual([]);
  });
});

describe('held-out bits/dim of the flows', () => {
  // Held-out bits/dim of docs/results/cpu-actnorm/mnist-usps-conditional (n_t = 100, seeds 0-2).
  const baseline = [8.113, 7.994, 7.956];
  const transfer: Record<number, number[]> = { 100: [7.897, 7.929, 7.921], 60000: [7.691, 7.674, 7.646] };
  const flowCell = (arm: CellResult['arm'], seed: number, ns: number | null, bitsPerDim: number): CellResult => ({ ...cell(arm, seed, '100', ns, rec(400, 200)), family: 'flow', bitsPerDim });
  const cells = [0, 1, 2].flatMap((seed) => [
    flowCell('baseline', seed, null, baseline[seed]),
    ...[100, 60000].flatMap((ns) => [flowCell('transfer', seed, ns, transfer[ns][seed]), flowCell('matched', seed, ns, baseline[seed])]),
  ]);
  /** Mean and sample sd by a plain float64 loop. */
  const meanSd = (xs: number[]) => {
    let sum = 0;
    for (const x of xs) sum += x;
    const mean = sum / xs.length;
    let ss = 0;
    for (const x of xs) ss += (x - mean) * (x - mean);
    return { mean, sd: Math.sqrt(ss / (xs.length - 1)) };
  };

  it('are summarized per arm and paired by seed against both baselines, like W1', () => {
    const { rows, trends } = summarize(cells);
    for (const ns of [100, 60000]) {
      const row = rows.find((r) => r.ns === ns)!;
      const t = meanSd(transfer[ns]);
      expect(row.arms.transfer!.bitsPerDim!.mean).toBeCloseTo(t.mean, 12);
      expect(row.arms.transfer!.bitsPerDim!.sd).toBeCloseTo(t.sd, 12);
      expect(row.arms.baseline!.bitsPerDim!.mean).toBeCloseTo(meanSd(baseline).mean, 12);
      const d = meanSd(transfer[ns].map((x, k) => x - baseline[k]));
      for (const p of [row.bpdVsBaseline!, row.bpdVsMatched!]) {
        expect(p.mean).toBeCloseTo(d.mean, 12);
        expect(p.sd).toBeCloseTo(d.sd, 12);
        // n_s = 100: -0.105 ± 0.097; n_s = 60,000: -0.351 ± 0.062: both beyond one sd.
        expect(p.verdict).toBe('a lower');
      }
    }
    expect(likelihoodWinsBeyondSpread(rows).map((r) => r.ns)).toEqual([100, 60000]);
    // 7.916 ± 0.017 -> 7.670 ± 0.023: the intervals are apart.
    expect(trends.find((x) => x.arm === 'transfer' && x.metric === 'bitsPerDim')!.trend).toBe('falling');
  });

  it('are left out where a cell has none (diffusion), and a one-seed difference is no verdict', () => {
    const { rows, trends } = summarize([cell('baseline', 0, '100', null, rec(400, 200)), cell('transfer', 0, '100', 100, rec(400, 200), rec(1000, 800))]);
    expect(rows[0].arms.transfer!.bitsPerDim).toBeUndefined();
    expect(rows[0].bpdVsBaseline).toBeUndefined();
    expect(trends.some((x) => x.metric === 'bitsPerDim')).toBe(false);
    const one = summarize(cells.filter((c) => c.seed === 0)).rows;
    expect(one[0].bpdVsBaseline!.verdict).toBe('within spread');
    expect(likelihoodWinsBeyondSpread(one)).toEqual([]);
  });
});
