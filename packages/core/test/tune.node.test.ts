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
import { blockingName, convRowCandidates, geometryName, MATMUL_VEC4, MATMUL_VEC4_CANDIDATES, MATMUL_VEC4_LADDER, matmulVec4GeometryFor, rowBlockPixels, rowFit, rowKernelsApply, softmaxBucket, softmaxCandidates, softmaxRowModeFor } from '@transfuse/kernels';
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

describe('the vec4 matmul block (pure)', () => {
  const name = (M: number, N: number, batch: number, software = true, chosen?: string) => geometryName(matmulVec4GeometryFor(M, N, batch, software, chosen));
  test('software adapters take the largest ladder block that still gives 64 invocations', () => {
    expect(name(1024, 1024, 1)).toBe('b16x32_wg8x4');
    expect(name(256, 256, 1)).toBe('b16x32_wg8x4'); // 16 x 8 = 128 blocks
    expect(name(128, 128, 1)).toBe('b16x16_wg8x4'); // 16x32 gives 32, 16x16 gives 64
    expect(name(64, 128, 1)).toBe('b8x16_wg8x4'); // 16x16 gives 32: the fixed block
    expect(name(128, 128, 2)).toBe('b16x32_wg8x4'); // the batch counts
    expect(name(4, 4, 1)).toBe(geometryName(MATMUL_VEC4)); // too small for any: the fixed block
  });
  test('GPUs keep the fixed block; a measured or forced block wins when it is a candidate', () => {
    expect(name(1024, 1024, 1, false)).toBe(geometryName(MATMUL_VEC4));
    expect(name(1024, 1024, 1, true, 'b8x8_wg8x8')).toBe('b8x8_wg8x8');
    expect(name(1024, 1024, 1, true, 'b99x99_wg1x1')).toBe('b16x32_wg8x4');
  });
  test('every ladder block is a candidate, so the correctness test of each candidate covers it', () => {
    for (const g of MATMUL_VEC4_LADDER) expect(MATMUL_VEC4_CANDIDATES).toContain(g);
  });
});

describe('the softmax row mapping (pure)', () => {
  test('untuned it is the fixed rule: one invocation per row from 128 rows, else a workgroup per row', () => {
    expect([1, 127, 128, 4096].map((rows) => softmaxRowModeFor({ rows, len: 1000, inner: 1 }, false))).toEqual(['workgroup', 'workgroup', 'thread', 'thread']);
    expect(softmaxRowModeFor({ rows: 4, len: 1000, inner: 1 }, true)).toBe('thread');
  });
  test('a measured or forced mapping wins when it is a candidate; compatibility adapters have only thread', () => {
    expect(softmaxCandidates({ rows: 4096, len: 1000, inner: 1 }, false)).toEqual(['thread', 'workgroup']);
    expect(softmaxRowModeFor({ rows: 4096, len: 1000, inner: 1 }, false, 'workgroup')).toBe('workgroup');
    expect(softmaxCandidates({ rows: 4, len: 1000, inner: 1 }, true)).toEqual(['thread']);
    expect(softmaxRowModeFor({ rows: 4, len: 1000, inner: 1 }, true, 'workgroup')).toBe('thread');
  });
  test('buckets round rows and length up to powers of 2 and keep strided rows apart', () => {
    expect(softmaxBucket({ rows: 4096, len: 1000, inner: 1 })).toBe('r4096_l1024_c');
    expect(softmaxBucket({ rows: 33, len: 1000, inner: 3 })).toBe('r64_l1024_s');
  });
});

describe('tunePending', () => {
  test('measures the softmax forward and backward mappings apart and stores each', async () => {
    const kept = new Map<string, string>();
    T.setTuneStore({ get: (k) => kept.get(k), set: (k, v) => void kept.set(k, v) });
    T.setTuning(true);
    const x = T.randn([200, 37]).requireGrad();
    T.sum(T.mul(T.softmax(x), T.randn([200, 37]))).backward();
    const results = (await T.tunePending(1)).filter((r) => r.key.includes('|softmax'));
    expect(results.map((r) => r.key.split('|').slice(1).join('|')).sort()).toEqual(['softmax-backward|r256_l64_c', 'softmax|r256_l64_c']);
    for (const r of results) {
      expect(Object.keys(r.ms).sort()).toEqual(T.runtime().acquired.compatibility ? ['thread'] : ['thread', 'workgroup']);
      expect(r.ms[r.variant]).toBe(Math.min(...Object.values(r.ms)));
      expect(kept.get(r.key)).toBe(r.variant);
    }
    x.dispose();
  });

  test('a forced softmax mapping that is no candidate is an error naming the candidates', () => {
    const x = T.randn([3, 5]);
    T.forceVariant('softmax', 'warp');
    try {
      expect(() => T.softmax(x)).toThrow(/forced softmax variant 'warp' is not one of this shape's candidates: (workgroup, thread|thread)/);
    } finally {
      T.forceVariant('softmax', null);
      x.dispose();
    }
  });

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
