/**
 * NumPy `.npy` reader (format versions 1-3, C order, little-endian or byte-sized dtypes), for
 * image and label arrays saved with `numpy.save`.
 */
import { DataFileError, readMaybeGzipped } from './mnist.js';

export interface NpyArray {
  /** The dtype as NumPy writes it, e.g. '<f4', '|u1'. */
  dtype: string;
  shape: number[];
  /** The values, widened to float64. */
  data: Float64Array;
  integer: boolean;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const READERS: Record<string, [number, (v: DataView, at: number) => number, boolean]> = {
  u1: [1, (v, at) => v.getUint8(at), true],
  i1: [1, (v, at) => v.getInt8(at), true],
  u2: [2, (v, at) => v.getUint16(at, true), true],
  i2: [2, (v, at) => v.getInt16(at, true), true],
  u4: [4, (v, at) => v.getUint32(at, true), true],
  i4: [4, (v, at) => v.getInt32(at, true), true],
  i8: [8, (v, at) => Number(v.getBigInt64(at, true)), true],
  u8: [8, (v, at) => Number(v.getBigUint64(at, true)), true],
  f4: [4, (v, at) => v.getFloat32(at, true), false],
  f8: [8, (v, at) => v.getFloat64(at, true), false],
  b1: [1, (v, at) => v.getUint8(at), true],
};

export function loadNpy(path: string): NpyArray {
  const bytes = readMaybeGzipped(path);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new DataFileError(path, 'not a NumPy .npy file (no \\x93NUMPY magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  if (major < 1 || major > 3) throw new DataFileError(path, `.npy format version ${major} is not supported (1-3 are)`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = Buffer.from(bytes.subarray(start, start + headerLength)).toString('latin1');
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new DataFileError(path, `unreadable .npy header: ${header.trim()}`);
  if (fortran === 'True') throw new DataFileError(path, 'the array is in Fortran order; save it with numpy.ascontiguousarray first');
  const [order, kind] = [descr[0], descr.slice(1)];
  const reader = READERS[kind];
  if (!reader) throw new DataFileError(path, `dtype '${descr}' is not supported (use uint8, int8-64, float32 or float64)`);
  if (order === '>' && reader[0] > 1) throw new DataFileError(path, `dtype '${descr}' is big-endian; save it as little-endian ('<')`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((s) => !Number.isInteger(s) || s < 0)) throw new DataFileError(path, `invalid .npy shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const [size, read, integer] = reader;
  const offset = start + headerLength;
  if (bytes.length - offset !== count * size) {
    throw new DataFileError(path, `shape (${shape.join(', ')}) of dtype '${descr}' needs ${count * size} bytes but ${bytes.length - offset} follow the header`);
  }
  const data = new Float64Array(count);
  for (let k = 0; k < count; k++) data[k] = read(view, offset + k * size);
  return { dtype: descr, shape, data, integer };
}
