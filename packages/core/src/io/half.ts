/**
 * Half-precision bit conversions (browser-safe, no I/O): IEEE 754 binary16 (safetensors F16) and
 * bfloat16 (BF16), stored as raw 16-bit patterns, to and from float32; and the dtype names users
 * write ('float32', 'F32', 'torch.float16', ...) mapped to safetensors' codes.
 */
import type { NamedArray, SafeDType } from './safetensors.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** binary16 bits → float32, exactly (every half value is a float32 value), incl. subnormals, ±inf, NaN. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits → float32: the top half of a float32's bits. */
export function bf16BitsToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/** float32 → binary16 bits, rounding to nearest even; overflow gives ±inf, NaN stays NaN. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    const m = mant | 0x800000; // implicit leading one
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent, up to inf: correct
  return sign | h;
}

const NAMES: Record<string, SafeDType> = {
  float32: 'F32', float: 'F32', f32: 'F32',
  float16: 'F16', half: 'F16', f16: 'F16',
  bfloat16: 'BF16', bf16: 'BF16',
  float64: 'F64', double: 'F64', f64: 'F64',
  int64: 'I64', long: 'I64', i64: 'I64',
  int32: 'I32', int: 'I32', i32: 'I32',
  int16: 'I16', short: 'I16', i16: 'I16',
  int8: 'I8', i8: 'I8',
  uint32: 'U32', u32: 'U32',
  uint16: 'U16', u16: 'U16',
  uint8: 'U8', u8: 'U8',
  bool: 'BOOL',
};

/** 'float32', 'F32', 'torch.float32', 'np.float16', 'bf16' ... → the safetensors code, or undefined. */
export function safeDTypeOf(name: string): SafeDType | undefined {
  if (typeof name !== 'string') return undefined;
  const key = name.replace(/^(torch|np|numpy)\./, '').toLowerCase();
  return NAMES[key];
}

/** A floating-point entry's values as float32 (F16 and BF16 converted exactly, F64 rounded); undefined for integer dtypes. */
export function floatValues(a: NamedArray): Float32Array | undefined {
  switch (a.dtype) {
    case 'F32':
      return a.data as Float32Array;
    case 'F64':
      return Float32Array.from(a.data as Float64Array);
    case 'F16':
      return Float32Array.from(a.data as Uint16Array, f16BitsToF32);
    case 'BF16':
      return Float32Array.from(a.data as Uint16Array, bf16BitsToF32);
    default:
      return undefined;
  }
}
