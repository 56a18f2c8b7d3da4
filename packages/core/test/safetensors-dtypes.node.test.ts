/**
 * Safetensors files as PyTorch users write them: dtype names, GPU tensors from stateDict(), and
 * half-precision (F16/BF16) checkpoints converted to float32, against known bit patterns.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits, Linear, tensor } from '@transfuse/core';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '@transfuse/core/node';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';

useGpu();
const root = mkdtempSync(join(tmpdir(), 'transfuse-api-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('safetensors dtypes', () => {
  test("saveSafetensors(path, model.stateDict()) writes F32; dtype names ('float32', 'torch.float32') are accepted", async () => {
    const model = new Linear(3, 2, { seed: 1 });
    const path = join(root, 'linear.safetensors');
    await saveSafetensors(path, model.stateDict());
    const { tensors } = loadSafetensors(path);
    expect(tensors.get('weight')!.dtype).toBe('F32');
    expect(Array.from(tensors.get('weight')!.data as Float32Array)).toEqual(Array.from(await values(model.weight)));
    const named = join(root, 'named.safetensors');
    saveSafetensors(named, { a: { dtype: 'float32' as never, shape: [2], data: Float32Array.of(1, 2) }, b: { dtype: 'torch.int32' as never, shape: [1], data: Int32Array.of(7) } });
    const h = readSafetensorsHeader(named);
    expect([h.tensors.get('a')!.dtype, h.tensors.get('b')!.dtype]).toEqual(['F32', 'I32']);
    expect(() => saveSafetensors(join(root, 'x'), { a: { dtype: 'float8' as never, shape: [1], data: Float32Array.of(1) } })).toThrow(/tensor 'a': unknown dtype "float8" \(use a safetensors code such as F32, or a name such as float32\)/);
  });

  test('F16 and BF16 bit patterns decode to their known float32 values', () => {
    const f16: [number, number][] = [
      [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14],
      [0x3555, 0.333251953125], [0x7c00, Infinity], [0xfc00, -Infinity], [0x0000, 0],
    ];
    for (const [bits, v] of f16) expect(f16BitsToF32(bits), `F16 0x${bits.toString(16)}`).toBe(v);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    const bf16: [number, number][] = [[0x3f80, 1], [0xc040, -3], [0x4049, 3.140625], [0x7f80, Infinity], [0x0001, 2 ** -133], [0x7f7f, 3.3895313892515355e38]];
    for (const [bits, v] of bf16) expect(bf16BitsToF32(bits), `BF16 0x${bits.toString(16)}`).toBe(v);
    expect(bf16BitsToF32(0x7fc0)).toBeNaN();
  });

  test('float32 → F16 rounds to nearest even, and every non-NaN half survives the round trip', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [1 / 3, 0x3555], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00],
      [2 ** -25, 0x0000], [3 * 2 ** -26, 0x0001], [2 ** -24, 0x0001], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02],
    ];
    for (const [x, bits] of cases) expect(f32ToF16Bits(x), `${x}`).toBe(bits);
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToF32(h);
      if (!Number.isNaN(v)) expect(f32ToF16Bits(v)).toBe(h);
    }
  });

  test('a half-precision checkpoint (F16 weight, BF16 bias) loads into a float32 module; F16 save on request', async () => {
    const path = join(root, 'half.safetensors');
    saveSafetensors(path, {
      weight: { dtype: 'F16', shape: [2, 2], data: Uint16Array.of(0x3c00, 0xc000, 0x3555, 0x0001) },
      bias: { dtype: 'BF16', shape: [2], data: Uint16Array.of(0x4049, 0xc040) },
    });
    const model = new Linear(2, 2, { seed: 3 });
    model.loadStateDict(loadSafetensors(path).tensors);
    expect(Array.from(await values(model.weight))).toEqual([1, -2, 0.333251953125, 2 ** -24]);
    expect(Array.from(await values(model.bias!))).toEqual([3.140625, -3]);

    const half = join(root, 'saved-half.safetensors');
    await saveSafetensors(half, model.stateDict(), undefined, { dtype: 'float16' });
    const back = loadSafetensors(half).tensors;
    expect(back.get('weight')!.dtype).toBe('F16');
    expect(Array.from(back.get('weight')!.data as Uint16Array)).toEqual([0x3c00, 0xc000, 0x3555, 0x0001]);
    expect(Array.from(back.get('bias')!.data as Uint16Array)).toEqual([0x4248, 0xc200]); // 3.140625 → 3.140625 (0x4248), -3
    expect(() => saveSafetensors(half, {}, undefined, { dtype: 'I8' })).toThrow(/options.dtype must be F16 or F32, got "I8"/);
  });
});

