import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { acquireDevice, runtime, tensor } from '@transfuse/core';
import { useGpu } from './helpers.js';

useGpu();

describe('bad input gives a clear error naming the op and the shapes', () => {
  test('shapes that do not broadcast', () => {
    expect(() => T.add(T.zeros([2, 3]), T.zeros([4]))).toThrow(/add: shapes \[2, 3\] and \[4\] cannot be broadcast together \(axis 1 of the result: 3 vs 4\)/);
    expect(() => T.where(T.zeros([2]), T.zeros([3]), 0)).toThrow(/where: shapes \[2\] and \[3\] cannot be broadcast/);
    expect(() => T.matmul(T.zeros([2, 3]), T.zeros([4, 5]))).toThrow(/matmul: inner dimensions differ: \[2, 3\] · \[4, 5\] \(3 vs 4\)/);
    expect(() => T.concat([T.zeros([2, 3]), T.zeros([3, 3])], 1)).toThrow(/concat: shapes \[2, 3\], \[3, 3\] differ outside axis 1/);
  });

  test('wrong dtypes', () => {
    const i = tensor(new Int32Array([1, 2]));
    expect(() => T.add(i, T.zeros([2]))).toThrow(/add: expected float32 tensors, got int32 of shape \[2\]/);
    expect(() => T.exp(i)).toThrow(/exp: expected float32 tensors, got int32/);
    expect(() => T.sum(i)).toThrow(/sum: expected float32 tensors, got int32/);
    expect(() => tensor([1.5], [1], 'int32')).toThrow(/tensor: int32 tensor given non-integer value 1.5 at index 0/);
  });

  test('use after dispose names the op and the tensor', async () => {
    const x = T.ones([2, 5]);
    x.dispose();
    x.dispose(); // idempotent
    expect(() => T.add(x, 1)).toThrow(/add: a float32 tensor of shape \[2, 5\] was used after dispose\(\)/);
    expect(() => x.reshape([10])).toThrow(/reshape: a float32 tensor of shape \[2, 5\] was used after dispose\(\)/);
    await expect(x.data()).rejects.toThrow(/data: a float32 tensor of shape \[2, 5\] was used after dispose\(\)/);
  });

  test('axes out of range, bad reshapes and permutations', () => {
    const x = T.zeros([3, 4]);
    expect(() => T.sum(x, 2)).toThrow(/sum: axis 2 is out of range for a tensor of rank 2 \(valid: -2..1\)/);
    expect(() => T.softmax(x, -3)).toThrow(/softmax: axis -3 is out of range/);
    expect(() => T.sum(x, [1, 1])).toThrow(/sum: repeated axis/);
    expect(() => x.reshape([5, -1])).toThrow(/reshape: cannot reshape \[3, 4\] \(12 elements\) to \[5, -1\]/);
    expect(() => x.permute([0, 0])).toThrow(/permute: axes \[0,0\] are not a permutation/);
    expect(() => x.slice([0, 0], [2, 2], [1, 0])).toThrow(/slice: step 0 on axis 1 must be a positive integer/);
    expect(() => T.zeros([2, -1])).toThrow(/full: invalid shape \[2, -1\]/);
  });

  test('ragged or mis-sized data', () => {
    expect(() => tensor([[1, 2], [3]])).toThrow(/tensor: ragged nested array/);
    expect(() => tensor(new Float32Array(5), [2, 3])).toThrow(/tensor: 5 values do not fill shape \[2, 3\] \(6 elements\)/);
  });

  test("a tensor larger than the adapter's storage binding limit is refused before allocation", () => {
    const limit = runtime().limits.maxStorageBufferBindingSize;
    const n = Math.floor(limit / 4) + 1;
    expect(() => T.zeros([n])).toThrow(new RegExp(`full: a float32 tensor of shape \\[${n}\\] needs ${n * 4} bytes, more than this adapter's maxStorageBufferBindingSize`));
  });

  test('in-place assign checks shapes and grad mode', async () => {
    const p = T.zeros([3]).requireGrad();
    expect(() => T.assign(p, T.ones([3]))).toThrow(/assign: in-place update of a tensor that requires grad \[3\]; wrap the update in noGrad\(\)/);
    expect(() => T.noGrad(() => T.assign(p, T.ones([4])))).toThrow(/assign: cannot copy a float32 tensor of shape \[4\] into a float32 one of shape \[3\]/);
    T.noGrad(() => T.assign(p, T.full([3], 2)));
    expect(Array.from(await p.data())).toEqual([2, 2, 2]);
  });

  test('tidy refuses async functions', () => {
    expect(() => T.tidy(async () => T.zeros([1]))).toThrow(/tidy\(fn\): fn returned a Promise/);
  });

  test('no adapter: the error says what was tried and how to get one', async () => {
    const saved = process.env.TRANSFUSE_LAVAPIPE_ICD;
    process.env.TRANSFUSE_LAVAPIPE_ICD = '/nonexistent/lvp_icd.json';
    try {
      await expect(acquireDevice({ backend: 'lavapipe' })).rejects.toThrow(
        /No WebGPU adapter found \(backend 'lavapipe'\)\. Tried:\n {2}- vulkan \(lavapipe\): TRANSFUSE_LAVAPIPE_ICD=\/nonexistent\/lvp_icd\.json does not exist[\s\S]*How to get a WebGPU adapter:[\s\S]*npm run setup/,
      );
    } finally {
      if (saved === undefined) delete process.env.TRANSFUSE_LAVAPIPE_ICD;
      else process.env.TRANSFUSE_LAVAPIPE_ICD = saved;
    }
    await expect(acquireDevice({ backend: 'metal' as never })).rejects.toThrow(/Unknown backend 'metal'/);
  });
});
