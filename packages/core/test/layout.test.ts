import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { tensor } from '@transfuse/core';
import { expectClose, freshSeed, seededRandom, useGpu, values } from './helpers.js';
import * as ref from './reference.js';

useGpu();

/** Distinct values (the linear index) make any misplaced element visible; copies are exact. */
const iota = (shape: number[]) => ({ data: Float64Array.from({ length: ref.size(shape) }, (_, i) => i), shape });
const EXACT = { rtol: 0, atol: 0 };

describe('layout ops', () => {
  test('reshape shares storage and infers -1', async () => {
    const x = tensor(Float32Array.from(iota([3, 5, 7]).data), [3, 5, 7]);
    const y = x.reshape([5, -1]);
    expect(y.shape).toEqual([5, 21]);
    expect(T.memory().liveBuffers).toBeGreaterThan(0);
    expectClose(await values(y), iota([105]).data, EXACT, 'reshape');
    expect(x.flatten(1).shape).toEqual([3, 35]);
    expect(x.unsqueeze(1).shape).toEqual([3, 1, 5, 7]);
    expect(x.unsqueeze(1).squeeze().shape).toEqual([3, 5, 7]);
  });

  test('permute and transpose against index arithmetic', async () => {
    for (const [shape, perm] of [
      [[3, 5, 7], [2, 0, 1]],
      [[2, 3, 4, 5], [3, 1, 0, 2]],
      [[1, 33, 1, 7], [3, 2, 1, 0]],
      [[17, 9], [1, 0]],
    ] as [number[], number[]][]) {
      const a = iota(shape);
      const y = tensor(Float32Array.from(a.data), shape).permute(perm);
      const want = ref.permute(a, perm);
      expect(y.shape).toEqual(want.shape);
      expectClose(await values(y), want.data, EXACT, `permute ${JSON.stringify(shape)} ${JSON.stringify(perm)}`);
    }
    const x = tensor(Float32Array.from(iota([2, 3, 4]).data), [2, 3, 4]);
    expectClose(await values(x.transpose(0, 2)), ref.permute(iota([2, 3, 4]), [2, 1, 0]).data, EXACT, 'transpose');
  });

  test('slice with negative indices, ends and steps', async () => {
    const shape = [5, 7, 9];
    const a = iota(shape);
    const x = tensor(Float32Array.from(a.data), shape);
    const cases: [number[], (number | undefined)[], number[]][] = [
      [[1, 2, 0], [4, 7, 9], [1, 1, 1]],
      [[-3, 0, 1], [undefined, -1, undefined], [1, 2, 3]],
      [[0, 6, 8], [5, 7, 9], [2, 1, 1]],
      [[2], [3], [1]],
    ];
    for (const [starts, ends, steps] of cases) {
      const y = x.slice(starts, ends, steps);
      // Reference: Python slicing per axis.
      const ranges = shape.map((dim, i) => {
        const norm = (v: number) => Math.min(dim, Math.max(0, v < 0 ? v + dim : v));
        const s = norm(starts[i] ?? 0);
        const e = ends[i] === undefined ? dim : norm(ends[i]!);
        const out: number[] = [];
        for (let k = s; k < e; k += steps[i] ?? 1) out.push(k);
        return out;
      });
      const want: number[] = [];
      for (const i of ranges[0]) for (const j of ranges[1]) for (const k of ranges[2]) want.push(a.data[(i * 7 + j) * 9 + k]);
      expect(y.shape).toEqual(ranges.map((r) => r.length));
      expectClose(await values(y), want, EXACT, `slice ${JSON.stringify([starts, ends, steps])}`);
    }
  });

  test('concat and stack along every axis', async () => {
    const seed = freshSeed();
    const rng = seededRandom(seed);
    for (const axis of [0, 1, 2]) {
      const shapes = [3, 1, 5].map((k) => [2, 3, 4].map((d, i) => (i === axis ? k : d)));
      const parts = shapes.map((s) => ({ data: Float64Array.from({ length: ref.size(s) }, () => Math.round(rng(-100, 100))), shape: s }));
      const y = T.concat(parts.map((p) => tensor(Float32Array.from(p.data), p.shape)), axis);
      const outShape = [...shapes[0]];
      outShape[axis] = 9;
      expect(y.shape).toEqual(outShape);
      const got = await values(y);
      for (let i = 0; i < got.length; i++) {
        const c = ref.coords(i, outShape);
        let k = c[axis];
        let p = 0;
        while (k >= parts[p].shape[axis]) k -= parts[p++].shape[axis];
        const cc = [...c];
        cc[axis] = k;
        const idx = cc.reduce((acc, v, d) => acc + v * ref.strides(parts[p].shape)[d], 0);
        expect(got[i], `concat axis ${axis} element ${i}`).toBe(parts[p].data[idx]);
      }
    }
    const s = T.stack([tensor([1, 2]), tensor([3, 4]), tensor([5, 6])], 1);
    expect(await s.toArray()).toEqual([[1, 3, 5], [2, 4, 6]]);
  });

  test('expand broadcasts by copying', async () => {
    const x = tensor([[1], [2], [3]]);
    expect(await x.expand([2, 3, 4]).toArray()).toEqual([
      [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]],
      [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]],
    ]);
    expect(() => x.expand([4, 2])).toThrow(/expand: cannot broadcast \[3, 1\] to \[4, 2\]/);
  });

  test('indexSelect gathers rows along any axis; repeated indices allowed', async () => {
    const shape = [4, 5, 3];
    const a = iota(shape);
    const x = tensor(Float32Array.from(a.data), shape);
    const idx = tensor(new Int32Array([3, 0, 3, 1]));
    const y = x.indexSelect(1, idx);
    expect(y.shape).toEqual([4, 4, 3]);
    const want: number[] = [];
    for (let i = 0; i < 4; i++) for (const j of [3, 0, 3, 1]) for (let k = 0; k < 3; k++) want.push(a.data[(i * 5 + j) * 3 + k]);
    expectClose(await values(y), want, EXACT, 'indexSelect');
    expect(() => x.indexSelect(0, tensor([0, 1]))).toThrow(/indexSelect: expected int32 tensors, got float32/);
  });

  test('cast, arange, full, zeros, ones', async () => {
    expect(Array.from(await T.cast(tensor([1.7, -2.7, 3]), 'int32').data())).toEqual([1, -2, 3]);
    expect(Array.from(await T.cast(tensor(new Int32Array([4, -5])), 'float32').data())).toEqual([4, -5]);
    expect(Array.from(await T.arange(5).data())).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(await T.arange(1, 2, 0.25).data())).toEqual([1, 1.25, 1.5, 1.75]);
    expect(Array.from(await T.arange(3, 0, -1, 'int32').data())).toEqual([3, 2, 1]);
    expect(Array.from(await T.full([2, 3], 7.5).data())).toEqual([7.5, 7.5, 7.5, 7.5, 7.5, 7.5]);
    expect(Array.from(await T.full([3], -4, 'int32').data())).toEqual([-4, -4, -4]);
    expect(Array.from(await T.zeros([1027]).data()).every((v) => v === 0)).toBe(true);
    expect(Array.from(await T.ones([5]).data())).toEqual([1, 1, 1, 1, 1]);
    expect(await tensor(3).item()).toBe(3);
    expect(tensor([[1, 2], [3, 4]]).shape).toEqual([2, 2]);
  });
});
