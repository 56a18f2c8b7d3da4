/** The statistics behind a transfer claim, against values computed by hand. */
import { describe, expect, it } from 'vitest';
import { pairedDifference, stat, trendBeyondSpread } from '../src/metrics/statistics.js';

describe('statistics', () => {
  it('stat: mean and sample sd (n - 1)', () => {
    // mean 4; squared deviations 4, 0, 4 -> 8 / 2 = 4 -> sd 2
    expect(stat([2, 4, 6])).toEqual({ mean: 4, sd: 2, n: 3 });
    expect(stat([5])).toEqual({ mean: 5, sd: 0, n: 1 });
    expect(() => stat([])).toThrow(/no values/);
  });

  it('pairedDifference: per-seed a - b, its mean and sd, and whether it clears one sd', () => {
    // differences -0.3, -0.1, -0.2: mean -0.2, sd 0.1 -> |mean| > sd: a lower
    const p = pairedDifference([4.4, 4.5, 4.6], [4.7, 4.6, 4.8]);
    expect(p.differences.map((x) => +x.toFixed(12))).toEqual([-0.3, -0.1, -0.2]);
    expect(p.mean).toBeCloseTo(-0.2, 12);
    expect(p.sd).toBeCloseTo(0.1, 12);
    expect(p.verdict).toBe('a lower');
    // differences 0.3, -0.1, 0.1: mean 0.1, sd 0.2 -> within spread
    expect(pairedDifference([1.3, 0.9, 1.1], [1, 1, 1]).verdict).toBe('within spread');
    expect(pairedDifference([2, 2.2], [1, 1.1]).verdict).toBe('a higher');
    // One pair cannot clear a spread it does not have.
    expect(pairedDifference([1], [2]).verdict).toBe('within spread');
    expect(() => pairedDifference([1, 2], [1])).toThrow(/pairs must match/);
  });

  it('trendBeyondSpread: monotone only when neighbouring mean ± sd intervals are disjoint', () => {
    const s = (mean: number, sd: number) => ({ mean, sd, n: 3 });
    expect(trendBeyondSpread([s(5, 0.1), s(4.7, 0.1), s(4.4, 0.05)])).toBe('falling');
    expect(trendBeyondSpread([s(4, 0.1), s(4.5, 0.1)])).toBe('rising');
    // 4.9 - 0.1 = 4.8 is not above 4.75 + 0.1 = 4.85: overlapping, although the means fall.
    expect(trendBeyondSpread([s(5, 0.1), s(4.9, 0.1), s(4.8, 0.1)])).toBe('flat within spread');
    expect(trendBeyondSpread([s(5, 0.1), s(4.5, 0.1), s(4.45, 0.1)])).toBe('not monotone');
    expect(trendBeyondSpread([{ mean: 5, sd: 0, n: 1 }, { mean: 4, sd: 0, n: 1 }])).toBe('one seed: no claim');
  });
});
