/**
 * The statistics a transfer claim rests on: mean and sample sd over seeds, paired differences
 * (same seed, same target data) and trends that count only when they hold beyond the seed spread.
 * Pure functions, browser-safe.
 */

export interface Stat {
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator; 0 for one value). */
  sd: number;
  n: number;
}

export function stat(values: readonly number[]): Stat {
  const n = values.length;
  if (n === 0) throw new Error('stat: no values');
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

export const fmtStat = (s: Stat, digits = 4): string => (s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}` : s.mean.toFixed(digits));

export interface PairedDifference extends Stat {
  /** Per-pair a - b, in the order of the pairs. */
  differences: number[];
  /**
   * 'a lower' / 'a higher' when the mean difference is farther from 0 than one sd of the
   * differences (needs at least 2 pairs), else 'within spread'.
   */
  verdict: 'a lower' | 'a higher' | 'within spread';
}

/** Differences a - b of paired values (a[k] and b[k] share a seed and target data). */
export function pairedDifference(a: readonly number[], b: readonly number[]): PairedDifference {
  if (a.length !== b.length) throw new Error(`pairedDifference: ${a.length} values against ${b.length}; pairs must match`);
  const differences = a.map((x, k) => x - b[k]);
  const s = stat(differences);
  const beyond = s.n >= 2 && Math.abs(s.mean) > s.sd;
  return { ...s, differences, verdict: !beyond ? 'within spread' : s.mean < 0 ? 'a lower' : 'a higher' };
}

export type Trend = 'falling' | 'rising' | 'flat within spread' | 'not monotone' | 'one seed: no claim';

/**
 * The trend of mean ± sd points ordered by x: 'falling' (or 'rising') only when every step goes
 * down (up) and the mean ± sd intervals of neighbours do not overlap; 'flat within spread' when
 * every neighbouring pair overlaps; otherwise 'not monotone'.
 */
export function trendBeyondSpread(points: readonly Stat[]): Trend {
  if (points.length < 2) return 'flat within spread';
  if (points.some((p) => p.n < 2)) return 'one seed: no claim';
  const steps = points.slice(1).map((p, k) => {
    const q = points[k];
    if (q.mean - q.sd > p.mean + p.sd) return -1;
    if (p.mean - p.sd > q.mean + q.sd) return 1;
    return 0;
  });
  if (steps.every((s) => s === -1)) return 'falling';
  if (steps.every((s) => s === 1)) return 'rising';
  if (steps.every((s) => s === 0)) return 'flat within spread';
  return 'not monotone';
}
