/**
 * The safetensors byte codec where there are no files (it runs in the browser suite too): a
 * bit-exact round trip of every dtype, and errors that name the source. The file functions and
 * the full list of malformed headers are in safetensors.node.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors, type NamedArray } from '@transfuse/core';

describe('safetensors codec', () => {
  it('round-trips every dtype bit-exactly, with metadata', () => {
    const tensors: Record<string, NamedArray> = {
      f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1.5, -0, NaN, Infinity, 1e-45, -3.25]) },
      f64: { dtype: 'F64', shape: [1], data: Float64Array.from([Math.PI]) },
      f16: { dtype: 'F16', shape: [2], data: Uint16Array.from([0x3c00, 0xfbff]) },
      bf16: { dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0x7f80]) },
      i64: { dtype: 'I64', shape: [1], data: BigInt64Array.from([-(2n ** 62n)]) },
      i32: { dtype: 'I32', shape: [3], data: Int32Array.from([-1, 0, 2 ** 31 - 1]) },
      u8: { dtype: 'U8', shape: [0], data: new Uint8Array(0) },
      flag: { dtype: 'BOOL', shape: [], data: Uint8Array.from([1]) },
    };
    const bytes = encodeSafetensors(tensors, { step: '7' });
    const back = decodeSafetensors(bytes, 'memory');
    expect(back.metadata).toEqual({ step: '7' });
    expect([...back.tensors.keys()]).toEqual(Object.keys(tensors));
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors.get(name)!;
      expect([got.dtype, got.shape], name).toEqual([t.dtype, t.shape]);
      expect(new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength), name).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
  });

  it('names the source in decode errors', () => {
    const bytes = encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 1), 'model.safetensors')).toThrow(/^model\.safetensors: /);
    expect(() => decodeSafetensors(new Uint8Array(4), 'short.bin')).toThrow(/short\.bin: file is 4 bytes, too short/);
  });
});
