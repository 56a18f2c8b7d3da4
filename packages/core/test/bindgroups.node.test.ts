/**
 * Dawn's Node binding frees a bind group only when its JS object is garbage-collected, which the
 * runtime forces there (AcquiredDevice.collectGarbage); browsers free them on their own schedule,
 * so this bound holds only in Node.
 */
import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { useGpu } from './helpers.js';

useGpu({ poison: false });

describe('bind groups in Node', () => {
  test('a loop that reads nothing back but calls keepPace() lets old bind groups be collected', async () => {
    // 300 tensors paired in rotation make 60,000 distinct bind groups: past the 65,530 memory
    // mappings that lavapipe's live descriptor sets crashed at, had none been freed.
    const rt = T.runtime();
    const xs = Array.from({ length: 300 }, (_, i) => T.full([4], i));
    const before = { ...rt.counters };
    const alive = () => rt.counters.bindGroups - before.bindGroups - (rt.counters.bindGroupsCollected - before.bindGroupsCollected);
    let peak = 0;
    for (let i = 0; i < 60_000; i++) {
      T.add(xs[i % 300], xs[(i * 7 + Math.floor(i / 300)) % 300]).dispose();
      await rt.keepPace();
      peak = Math.max(peak, alive());
    }
    const created = rt.counters.bindGroups - before.bindGroups;
    expect(created).toBeGreaterThan(50_000);
    expect(peak, `${peak} of ${created} new bind groups alive at once`).toBeLessThan(20_000);
    expect(Array.from(await T.add(xs[3], xs[5]).data())).toEqual([8, 8, 8, 8]);
    xs.forEach((x) => x.dispose());
  }, 120_000);
});
