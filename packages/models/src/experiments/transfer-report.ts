/**
 * The report of a transfer experiment (Node-only: writes files): results.json, results.md,
 * w1.svg (W1 against n_s with seed error bars), gain.svg (paired differences against n_t) and
 * validation.svg (the validation curves that set every budget).
 */
import { join } from 'node:path';
import { lineChartSvg, type Series } from '../io/plot.js';
import { fmtStat, type PairedDifference, type Stat } from '../metrics/statistics.js';
import { writeFileAtomic, writeJson } from '../io/files.js';
import type { TransferResults } from './transfer-experiment.js';
import { fidelityWinsBeyondSpread, likelihoodWinsBeyondSpread, runsKeptAtFirstCheck, runsKeptStart, unconvergedRuns, untrainedBaselineSeeds, winsBeyondSpread, type Arm, type ArmSummary, type FlaggedRun, type SummaryRow } from './transfer-summary.js';

const f3 = (s: Stat | undefined) => (s ? fmtStat(s, 3) : '-');
const pct = (s: Stat | undefined) => (s ? (s.n > 1 ? `${(100 * s.mean).toFixed(1)} ± ${(100 * s.sd).toFixed(1)}%` : `${(100 * s.mean).toFixed(1)}%`) : '-');
const steps = (a: ArmSummary | undefined) => (a ? Math.round(a.totalSteps.mean).toString() : '-');
/** A paired difference of class fidelity, in percentage points. */
const points = (p: PairedDifference | undefined) => (p ? `${p.mean >= 0 ? '+' : ''}${(100 * p.mean).toFixed(1)}${p.n > 1 ? ` ± ${(100 * p.sd).toFixed(1)}` : ''} (${p.verdict === 'a lower' ? 'lower' : p.verdict === 'a higher' ? 'higher' : 'within spread'})` : '-');
const diff = (p: PairedDifference | undefined) => (p ? `${p.mean >= 0 ? '+' : ''}${p.mean.toFixed(3)}${p.n > 1 ? ` ± ${p.sd.toFixed(3)}` : ''} (${p.verdict === 'a lower' ? 'lower' : p.verdict === 'a higher' ? 'higher' : 'within spread'})` : '-');

/** How many seeds a claim rests on; under 3 the protocol takes it as a first reading, not a result. */
const seedCount = (row: SummaryRow): string => {
  const n = row.vsMatched?.n ?? 0;
  return n >= 3 ? `${n} seeds` : `${n} seeds only: a first reading, 3 are needed for a claim`;
};

const runName = (u: FlaggedRun) => `${u.family} ${u.run}${u.nt === null ? '' : ` n_t=${u.nt}`}${u.ns === null ? '' : ` n_s=${u.ns}`} seed ${u.seed} (kept step ${u.bestStep} of ${u.steps})`;

/** Whether every budget converged; if not, which runs a cap ended and the flag that gives them more. */
function convergenceLine(runs: FlaggedRun[]): string {
  if (!runs.length) return 'Every run was ended by its validation loss or ran past its best by the full patience: no cap cut a run that was still improving.';
  const flags = [runs.some((u) => u.run === 'source') && '--source-cap', runs.some((u) => u.run !== 'source' && u.run !== 'matched') && '--target-cap'].filter(Boolean);
  return (
    `**Not converged: ${runs.length} run(s) ended at their cap while the validation loss could still improve**: ${runs.map(runName).join('; ')}. ` +
    `The comparisons that read them measure the cap, not what the data can teach${flags.length ? `; raise ${flags.join(' and ')} (in a new --out)` : ' (the matched cap is the transfer arm\'s total steps)'}.`
  );
}

export function writeTransferReport(out: string, r: TransferResults): void {
  writeJson(join(out, 'results.json'), r);
  const c = r.config;
  const rows = r.summary.rows;
  const hasAcc = rows.some((row) => Object.values(row.arms).some((a) => a?.classAccuracy));
  // The variant gets its own column when the transfer arm is the main procedure.
  const hasVariant = rows.some((row) => row.transferArm === 'transfer' && row.arms.variant);
  const lines = [
    `# ${r.experiment} (preset ${r.preset}, protocol ${r.protocolVersion})`,
    '',
    `Source ${r.sourceName}, target ${r.targetName}: ${r.targetTrain} training / ${r.heldOut} held-out target images. Metric: ${r.metric}; lower is better.`,
    `Label-matched real-vs-real floor: ${r.floor.w1.toFixed(4)}.` + (r.classifier ? ` Class fidelity: an MLP classifier trained on the target training images${c.conditional ? '' : ' of every class (the score is the share of samples it assigns to the kept class)'}, ${(100 * r.classifier.heldOutAccuracy).toFixed(1)}% on ${r.classifier.heldOut} held-out real images.` : ''),
    `Seeds: ${c.seeds.join(', ')}. Every run stops on its own validation split (${100 * c.validationFraction.source}% of the source, ${100 * c.validationFraction.target}% of the target subset) and keeps its best weights; 'matched' is the baseline given the transfer arm's total steps as its cap.`,
    '',
    `| model | n_t | n_s | transfer W1 | baseline W1 | matched W1 | transfer - baseline | transfer - matched |${hasAcc ? ' transfer class acc. | baseline class acc. | matched class acc. |' : ''} steps: transfer (total) / baseline / matched |${hasVariant ? ' variant W1 |' : ''}`,
    `|---|---|---|---|---|---|---|---|${hasAcc ? '---|---|---|' : ''}---|${hasVariant ? '---|' : ''}`,
  ];
  /** A row's model, n_t and n_s cells. */
  const rowLabel = (row: SummaryRow) => {
    const used = r.sourceSizes[row.ns] ?? row.ns;
    return `${row.transferArm === 'variant' ? `${row.family} (variant)` : row.family} | ${row.nt === 'all' ? `all (${row.ntUsed})` : row.ntUsed} | ${used < row.ns ? `${row.ns} (all ${used})` : row.ns}`;
  };
  for (const row of rows) {
    const t = row.arms[row.transferArm];
    const acc = hasAcc ? ` ${pct(t?.classAccuracy)} | ${pct(row.arms.baseline?.classAccuracy)} | ${pct(row.arms.matched?.classAccuracy)} |` : '';
    lines.push(
      `| ${rowLabel(row)} | ${f3(t?.w1)} | ${f3(row.arms.baseline?.w1)} | ${f3(row.arms.matched?.w1)} | ${diff(row.vsBaseline)} | ${diff(row.vsMatched)} |${acc} ${steps(t)} / ${steps(row.arms.baseline)} / ${steps(row.arms.matched)} |${hasVariant ? ` ${row.transferArm === 'transfer' ? f3(row.arms.variant?.w1) : '-'} |` : ''}`,
    );
  }
  lines.push('', 'Differences are paired by seed (same seed, same target data): mean ± sd; "lower" or "higher" only when the mean is farther from 0 than one sd.');
  const fidelityRows = rows.filter((row) => row.accVsBaseline || row.accVsMatched);
  if (fidelityRows.length) {
    lines.push('', 'Class fidelity, paired the same way (percentage points; higher is better):', '', '| model | n_t | n_s | transfer - baseline | transfer - matched |', '|---|---|---|---|---|');
    for (const row of fidelityRows) lines.push(`| ${rowLabel(row)} | ${points(row.accVsBaseline)} | ${points(row.accVsMatched)} |`);
  }
  const bpdRows = rows.filter((row) => row.arms[row.transferArm]?.bitsPerDim);
  if (bpdRows.length) {
    // The flows' own objective: for samples far from the data, W1 reads smoothness more than fit.
    lines.push(
      '',
      'Held-out bits/dim of the flows (all held-out target images; lower is better), mean ± sd over seeds, differences paired as above:',
      '',
      `| model | n_t | n_s | transfer | baseline | matched | transfer - baseline | transfer - matched |${hasVariant ? ' variant |' : ''}`,
      `|---|---|---|---|---|---|---|---|${hasVariant ? '---|' : ''}`,
    );
    for (const row of bpdRows) {
      const bpd = (arm: Arm) => f3(row.arms[arm]?.bitsPerDim);
      lines.push(`| ${rowLabel(row)} | ${bpd(row.transferArm)} | ${bpd('baseline')} | ${bpd('matched')} | ${diff(row.bpdVsBaseline)} | ${diff(row.bpdVsMatched)} |${hasVariant ? ` ${row.transferArm === 'transfer' ? bpd('variant') : '-'} |` : ''}`);
    }
  }
  if (r.summary.trends.length) {
    lines.push('', 'Trend in n_s (monotone only when neighbouring mean ± sd intervals do not overlap):', '', '| model | arm | n_t | metric | trend |', '|---|---|---|---|---|');
    const metricName = { w1: 'W1', classAccuracy: 'class accuracy', bitsPerDim: 'held-out bits/dim' } as const;
    for (const t of r.summary.trends) lines.push(`| ${t.family} | ${t.arm} | ${t.nt} | ${metricName[t.metric]} | ${t.trend} |`);
  }
  const untrained = (w: SummaryRow) => {
    const seeds = untrainedBaselineSeeds(r.cells, w);
    return seeds.length ? `; but in seed(s) ${seeds.join(', ')} a target-only arm kept its random initialisation, which training on the target never improved, so there it beats an untrained model` : '';
  };
  /** The cells where transfer's `what` beats both baselines, each with its seed count and any untrained baseline. */
  const winsLine = (what: string, wins: SummaryRow[]) => `${what} beyond seed spread at: ${wins.map((w) => `${w.family} n_t=${w.nt} n_s=${w.ns} (${seedCount(w)}${untrained(w)})`).join('; ')}.`;
  const fidelityWins = fidelityWinsBeyondSpread(rows);
  if (fidelityWins.length) lines.push('', winsLine("Transfer's class fidelity is above both baselines'", fidelityWins));
  const likelihoodWins = likelihoodWinsBeyondSpread(rows);
  if (likelihoodWins.length) lines.push('', winsLine("Transfer's held-out bits/dim are below both baselines'", likelihoodWins));
  const wins = winsBeyondSpread(rows);
  lines.push('', wins.length ? winsLine('Transfer beats both baselines', wins) : 'Transfer beats both the baseline and the compute-matched baseline beyond seed spread in no cell.');
  lines.push('', convergenceLine(unconvergedRuns(r.cells, { diffusion: c.diffusion, flow: c.flow })));
  const first = runsKeptAtFirstCheck(r.cells);
  if (first.length) {
    lines.push(
      '',
      `**Kept their first validation check: ${first.length} run(s)**: ${first.map(runName).join('; ')}. ` +
        'Their best weights may lie before that check (a small set is overfit within one check interval; a transferred model may be best untouched), so the interval chose them; compare their arms with care ' +
        '(--target-check-epochs, in a new --out, checks the target runs at step 0 and at least every N passes over their data).',
    );
  }
  const start = runsKeptStart(r.cells);
  if (start.length) {
    lines.push('', `Kept their starting weights (training never improved the validation loss): ${start.length} run(s): ${start.map(runName).join('; ')}.`);
  }
  const perClass = r.cells.filter((x) => Object.keys(x.perClass).length && x.seed === c.seeds[0]);
  if (perClass.length) {
    const classes = Object.keys(r.floor.perClass);
    lines.push('', `Per-class W1, seed ${c.seeds[0]}:`, '', `| arm | n_t | n_s | ${classes.join(' | ')} |`, `|---|---|---|${'---|'.repeat(classes.length)}`);
    lines.push(`| floor | - | - | ${classes.map((k) => r.floor.perClass[k].toFixed(3)).join(' | ')} |`);
    for (const x of perClass) lines.push(`| ${x.family} ${x.arm} | ${x.ntUsed} | ${x.ns ?? '-'} | ${classes.map((k) => x.perClass[k]?.toFixed(3) ?? '-').join(' | ')} |`);
  }
  writeFileAtomic(join(out, 'results.md'), `${lines.join('\n')}\n`);
  writePlots(out, r);
}

function writePlots(out: string, r: TransferResults): void {
  const rows = r.summary.rows;
  const w1: Series[] = [];
  for (const family of new Set(rows.map((x) => x.family))) {
    for (const nt of new Set(rows.filter((x) => x.family === family).map((x) => x.nt))) {
      const mine = rows.filter((x) => x.family === family && x.nt === nt);
      const at = (arm: 'baseline' | 'matched' | 'transfer' | 'variant') =>
        mine.filter((x) => x.arms[arm]).map((x) => ({ x: x.ns, y: x.arms[arm]!.w1.mean, spread: x.arms[arm]!.w1.sd }));
      const tag = `${family} n_t=${nt}`;
      w1.push({ name: `${tag}: ${mine[0].transferArm}`, points: at(mine[0].transferArm) });
      if (mine[0].arms.matched) w1.push({ name: `${tag}: matched`, points: at('matched'), dashed: true });
      if (mine[0].arms.baseline) w1.push({ name: `${tag}: baseline`, points: at('baseline'), dashed: true });
    }
  }
  const nonEmpty = (s: Series[]) => s.filter((x) => x.points.length);
  if (nonEmpty(w1).length) {
    const xs = [...new Set(rows.map((x) => x.ns))];
    w1.push({ name: 'floor', points: xs.map((x) => ({ x, y: r.floor.w1 })), dashed: true });
    writeFileAtomic(join(out, 'w1.svg'), lineChartSvg(`${r.experiment}: W1 vs n_s (mean ± sd over seeds)`, 'source size n_s', 'W1 (pixels in [0, 1])', nonEmpty(w1), { logX: true }));
  }
  // The paired gain against n_t, at the largest n_s.
  const gain: Series[] = [];
  for (const family of new Set(rows.map((x) => x.family))) {
    const mine = rows.filter((x) => x.family === family);
    const ns = Math.max(...mine.map((x) => x.ns));
    const at = mine.filter((x) => x.ns === ns);
    for (const [name, pick] of [['baseline', (x: (typeof at)[number]) => x.vsBaseline], ['matched', (x: (typeof at)[number]) => x.vsMatched]] as const) {
      const points = at.filter((x) => pick(x)).map((x) => ({ x: x.ntUsed, y: pick(x)!.mean, spread: pick(x)!.sd }));
      if (points.length) gain.push({ name: `${family} n_s=${ns}: transfer - ${name}`, points });
    }
  }
  if (gain.length) {
    const xs = [...new Set(gain.flatMap((s) => s.points.map((q) => q.x)))];
    gain.push({ name: 'no difference', points: xs.map((x) => ({ x, y: 0 })), dashed: true });
    writeFileAtomic(join(out, 'gain.svg'), lineChartSvg(`${r.experiment}: paired W1 difference vs n_t`, 'target size n_t', 'W1 difference (< 0: transfer better)', gain, { logX: true }));
  }
  // Validation curves of the first seed, largest n_t and n_s: the evidence that the budgets converged.
  const first = r.cells.filter((x) => x.seed === r.config.seeds[0]);
  const ntMax = Math.max(...first.map((x) => x.ntUsed));
  const nsMax = Math.max(...first.map((x) => x.ns ?? 0));
  const curves: Series[] = [];
  const curve = (name: string, cv: [number, number][], dashed = false) => cv.length && curves.push({ name, points: cv.map(([x, y]) => ({ x, y })), dashed });
  for (const x of first.filter((q) => q.ntUsed === ntMax && (q.ns === null || q.ns === nsMax))) {
    if (x.source && x.arm !== 'variant') curve(`${x.family} source n_s=${x.ns}`, x.source.curve, true);
    curve(`${x.family} ${x.arm}`, x.target.curve);
  }
  if (curves.length) writeFileAtomic(join(out, 'validation.svg'), lineChartSvg(`${r.experiment}: validation loss, seed ${r.config.seeds[0]}, n_t=${ntMax}`, 'training step', 'validation loss (own split)', curves));
}

