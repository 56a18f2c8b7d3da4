/**
 * The tuner: forced variants, queued buckets measured by tunePending and kept in the store, and
 * the Node file store (atomic rewrite, corrupt file named). Each variant's correctness is tested
 * with its kernel family (conv.test.ts forces every row-kernel candidate).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { fileTuneStore } from '@transfuse/core/node';
import { blockingName, convRowCandidates, rowBlockPixels, rowFit, rowKernelsApply } from '@transfuse/kernels';
import { useGpu } from './helpers.js';

useGpu({ poison: false });

afterEach(() => {
  T.setTuning(false);
  T.setTuneStore(T.memoryTuneStore());
});

describe('the row conv rules (pure)', () => {
  test('rowFit tiles a row with the least waste, the larger block on a tie', () => {
    expect([4, 5, 7, 8, 14, 16, 28, 32, 3].map((w) => rowFit(w))).toEqual([4, 5, 7, 8, 7, 8, 7, 8, 3]);
  });
  test('the fixed rule takes 4 pixels for rows of 4 or fewer, else 8, and comes first among the candidates', () => {
    expect([1, 3, 4, 5, 7, 8, 14, 16, 28].map((w) => rowBlockPixels(w))).toEqual([4, 4, 4, 8, 8, 8, 8, 8, 8]);
    expect(convRowCandidates({ outW: 7, outCg: 8, redC: 4, kw: 3 }).map(blockingName)).toEqual(['tco4_tpx8_wg64', 'tco4_tpx7_wg64', 'tco8_tpx7_wg64', 'tco8_tpx4_wg64']);
  });
  test('the row kernels serve stride-1, dilation-1 convs along x with kernels 2 to 7 wide', () => {
    expect(rowKernelsApply(1, 1, 3)).toBe(true);
    expect(rowKernelsApply(1, 1, 7)).toBe(true);
    expect([rowKernelsApply(2, 1, 3), rowKernelsApply(1, 2, 3), rowKernelsApply(1, 1, 1), rowKernelsApply(1, 1, 8)]).toEqual([false, false, false, false]);
  });
});

describe('tunePending', () => {
  test('measures each queued conv bucket once, stores the fastest candidate, and later convs use it', async () => {
    const kept = new Map<string, string>();
    T.setTuneStore({ get: (k) => kept.get(k), set: (k, v) => void kept.set(k, v) });
    T.setTuning(true);
    const x = T.randn([2, 4, 6, 6]).requireGrad();
    const w = T.randn([8, 4, 3, 3]).requireGrad();
    T.sum(T.conv2d(x, w, null, { padding: 1 })).backward();
    expect(T.pendingTunes()).toBe(3); // forward, input gradient, weight gradient
    const results = await T.tunePending(1);
    expect(results.map((r) => r.key.split('|')[1]).sort()).toEqual(['conv', 'conv-input-grad', 'conv-wgrad']);
    for (const r of results) {
      expect(Object.keys(r.ms)).toContain(r.variant);
      expect(r.ms[r.variant]).toBe(Math.min(...Object.values(r.ms)));
      expect(kept.get(r.key)).toBe(r.variant);
    }
    expect(T.pendingTunes()).toBe(0);
    T.conv2d(x, w, null, { padding: 1 }).dispose();
    expect(T.pendingTunes()).toBe(0);
    x.dispose();
    w.dispose();
  });

  test('with tuning off nothing is queued and the rule decides', () => {
    const x = T.randn([1, 4, 6, 6]);
    const w = T.randn([8, 4, 3, 3]);
    T.conv2d(x, w, null, { padding: 1 }).dispose();
    expect(T.pendingTunes()).toBe(0);
    expect(blockingName(convRowCandidates({ outW: 4, outCg: 8, redC: 4, kw: 3 })[0])).toBe('tco4_tpx4_wg64');
    x.dispose();
    w.dispose();
  });
});

describe('fileTuneStore', () => {
  test('keeps choices across stores on the same file, and names a corrupt file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'transfuse-tune-'));
    const path = join(dir, 'sub', 'tune.json');
    fileTuneStore(path).set('a|conv|w4', 'tco4_tpx4_wg64');
    expect(fileTuneStore(path).get('a|conv|w4')).toBe('tco4_tpx4_wg64');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ 'a|conv|w4': 'tco4_tpx4_wg64' });
    writeFileSync(path, '{ not json');
    expect(() => fileTuneStore(path)).toThrow(new RegExp(`tuning cache ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is unreadable`));
  });
});
