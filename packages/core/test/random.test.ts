import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { philoxReference } from '@transfuse/kernels';
import { useGpu } from './helpers.js';

useGpu();

describe('counter-based random numbers', () => {
  test('philox reference matches the Random123 known-answer vectors', () => {
    // Philox4x32-10 known-answer tests from the Random123 distribution (kat_vectors).
    expect(philoxReference([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philoxReference([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([
      0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd,
    ]);
    expect(philoxReference([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
    ]);
  });

  test('uniform numbers are exactly the reference bits, for any size', async () => {
    for (const [seed, n] of [[1, 1], [42, 7], [2 ** 40 + 3, 1027]] as [number, number][]) {
      const got = await T.rand([n], { seed }).data();
      const key: [number, number] = [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
      for (let i = 0; i < n; i++) {
        const block = philoxReference([Math.floor(i / 4), 0, 0, 0], key);
        const want = (block[i % 4] >>> 8) * 2 ** -24;
        expect(got[i], `seed ${seed} element ${i}`).toBe(want);
      }
    }
  });

  test('same seed, same numbers; the global generator advances and resets', async () => {
    const a = await T.randn([1000], { seed: 7 }).data();
    const b = await T.randn([1000], { seed: 7 }).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    T.manualSeed(123);
    const c1 = await T.randn([10]).data();
    const c2 = await T.randn([10]).data();
    expect(Array.from(c1)).not.toEqual(Array.from(c2));
    T.manualSeed(123);
    expect(Array.from(await T.randn([10]).data())).toEqual(Array.from(c1));
  });

  test('normal and uniform moments', async () => {
    const n = 400_000;
    const z = await T.randn([n], { seed: 99, mean: 1.5, std: 2 }).data();
    let m = 0;
    for (const v of z) m += v;
    m /= n;
    let v2 = 0;
    let k3 = 0;
    for (const v of z) {
      v2 += (v - m) ** 2;
      k3 += (v - m) ** 3;
    }
    v2 /= n;
    k3 /= n * v2 ** 1.5;
    // Standard errors: mean 2/sqrt(n) = 0.003, variance 4*sqrt(2/n) = 0.009; allow ~5 sigma.
    expect(Math.abs(m - 1.5)).toBeLessThan(0.016);
    expect(Math.abs(v2 - 4)).toBeLessThan(0.05);
    expect(Math.abs(k3)).toBeLessThan(0.02);
    const u = await T.rand([n], { seed: 5, low: -1, high: 3 }).data();
    let um = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of u) {
      um += v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(Math.abs(um / n - 1)).toBeLessThan(0.01);
    expect(lo).toBeGreaterThanOrEqual(-1);
    expect(hi).toBeLessThan(3);
  });

  test('bad seeds and parameters are clear errors', () => {
    expect(() => T.randn([3], { seed: NaN })).toThrow(/randn: seed must be a safe integer, got NaN/);
    expect(() => T.manualSeed(1.5)).toThrow(/manualSeed: seed must be a safe integer/);
    expect(() => T.rand([3], { low: 0, high: Infinity })).toThrow(/rand: parameters must be finite/);
  });
});
