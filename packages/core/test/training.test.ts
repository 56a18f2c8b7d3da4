/**
 * End-to-end: a 2-layer MLP trained by gradient descent on the GPU path, and the leak check of a
 * 500-step forward + backward + update loop.
 */
import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { tensor, type Tensor } from '@transfuse/core';
import { useGpu } from './helpers.js';

useGpu({ poison: false });

interface Mlp {
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

const forward = (p: Mlp, x: Tensor) => T.add(T.matmul(T.tanh(T.add(T.matmul(x, p.w1), p.b1)), p.w2), p.b2);

function mlp(inputs: number, hidden: number, seed: number): Mlp {
  const scale = (fanIn: number) => ({ seed, std: 1 / Math.sqrt(fanIn) });
  return {
    w1: T.randn([inputs, hidden], scale(inputs)).requireGrad(),
    b1: T.zeros([hidden]).requireGrad(),
    w2: T.randn([hidden, 1], { ...scale(hidden), seed: seed + 1 }).requireGrad(),
    b2: T.zeros([1]).requireGrad(),
  };
}

/** One full-batch gradient-descent step; returns the loss (not read back). */
function step(p: Mlp, x: Tensor, y: Tensor, lr: number): Tensor {
  return T.tidy(() => {
    const err = T.sub(forward(p, x), y);
    const loss = T.mean(T.mul(err, err));
    loss.backward();
    T.noGrad(() => {
      for (const w of Object.values(p)) {
        T.assign(w, T.sub(w, T.mul(w.grad!, lr)));
        w.grad!.dispose();
        w.grad = null;
      }
    });
    return loss;
  });
}

describe('training on the GPU path', () => {
  test('a 2-layer MLP fits a fixed synthetic regression to MSE < 5e-4 in 1000 steps', async () => {
    // Target: a fixed smooth function of 4 inputs (variance about 0.37), 256 samples.
    const n = 256;
    const xs = new Float32Array(n * 4);
    const ys = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const row = [0, 1, 2, 3].map((k) => Math.sin(1.3 * i + 0.7 * k * k + k));
      xs.set(row, i * 4);
      ys[i] = Math.sin(row[0] + 0.5 * row[1]) * 0.8 + 0.3 * row[2] * row[3];
    }
    const x = tensor(xs, [n, 4]);
    const y = tensor(ys, [n, 1]);
    const p = mlp(4, 32, 11);
    const first = await step(p, x, y, 0.2).item();
    let last = first;
    for (let s = 1; s < 1000; s++) {
      const loss = step(p, x, y, 0.2);
      if (s === 999) last = await loss.item();
      loss.dispose();
    }
    expect(first).toBeGreaterThan(0.2);
    // Measured about 8e-5 at step 1000 (lavapipe); initial MSE about 0.3.
    expect(last).toBeLessThan(5e-4);
  });

  test('500 steps of forward + backward + update leak no tensors, buffers or bind groups', async () => {
    const x = T.randn([64, 8], { seed: 3 });
    const y = T.randn([64, 1], { seed: 4 });
    const p = mlp(8, 16, 5);
    const snapshots: T.MemoryInfo[] = [];
    const rt = T.runtime();
    let groups = 0;
    let dispatches = 0;
    for (let s = 0; s < 500; s++) {
      step(p, x, y, 0.01).dispose();
      if (s === 10 || s === 499) {
        await rt.sync();
        snapshots.push(T.memory());
        groups = rt.counters.bindGroups - groups;
        dispatches = rt.counters.dispatches - dispatches;
      }
    }
    // The pool hands mostly the same buffers to each step, so after warm-up nearly every dispatch
    // reuses a cached bind group (one per dispatch left Dawn's Vulkan backend allocating
    // descriptor pools until lavapipe crashed). Measured: 24 new groups in 16,137 dispatches.
    expect(dispatches).toBeGreaterThan(489 * 20);
    expect(groups, `${groups} bind groups created in ${dispatches} dispatches`).toBeLessThan(dispatches / 100);
    expect(snapshots[1].tensors).toBe(snapshots[0].tensors);
    expect(snapshots[1].liveBuffers).toBe(snapshots[0].liveBuffers);
    expect(snapshots[1].pooledBuffers).toBe(snapshots[0].pooledBuffers);
    expect(snapshots[1].pooledBytes).toBe(snapshots[0].pooledBytes);
  });
});

describe('LossLog', () => {
  test('reads the loss every logEvery steps, at the last step and when forced; disposes every loss', async () => {
    const seen: [number, number][] = [];
    const log = new T.LossLog('trainer', { steps: 10, logEvery: 4, label: null, onLog: (s, v) => seen.push([s, v]) });
    const before = T.memory().tensors;
    for (let s = 1; s <= 10; s++) await log.record(s, T.full([], s / 2), s === 5);
    log.done();
    expect(log.losses).toEqual([[4, 2], [5, 2.5], [8, 4], [10, 5]]);
    expect(seen).toEqual(log.losses);
    expect(T.memory().tensors).toBe(before);
  });

  test('a non-finite loss fails with the trainer, the step and the hint, and is still disposed', async () => {
    const log = new T.LossLog('trainX', { steps: 3, logEvery: 1, label: null, hint: 'lower the learning rate' });
    const before = T.memory().tensors;
    await log.record(1, T.full([], 0.5));
    await expect(log.record(2, T.full([], NaN))).rejects.toThrow('trainX: the loss became NaN at step 2; lower the learning rate');
    expect(T.memory().tensors).toBe(before);
    expect(() => new T.LossLog('trainY', { steps: 3, logEvery: 0, label: null })).toThrow('trainY: logEvery must be at least 1');
  });
});
