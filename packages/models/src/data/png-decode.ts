/**
 * PNG decoder for greyscale images (Node-only: node:zlib inflates the pixel data). Reads bit
 * depths 1-16 of greyscale, greyscale+alpha, RGB(A) and palette images whose pixels are grey
 * (R = G = B) and opaque; anything else is refused with the file named, never converted silently.
 */
import { inflateSync } from 'node:zlib';
import { crc32 } from '../io/png.js';
import { DataFileError } from './mnist.js';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const COLOR_NAMES: Record<number, string> = { 0: 'greyscale', 2: 'RGB', 3: 'palette', 4: 'greyscale+alpha', 6: 'RGBA' };

export interface GreyImage {
  width: number;
  height: number;
  /** Row-major grey values in [0, 1]. */
  pixels: Float32Array;
}

/** Decodes the bytes of a PNG file (path only names it in errors). */
export function decodePng(bytes: Uint8Array, path: string): GreyImage {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new DataFileError(path, 'not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0;
  let height = 0;
  let depth = 0;
  let color = -1;
  let palette: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  for (let at = 8; ; ) {
    if (at + 12 > bytes.length) throw new DataFileError(path, 'truncated PNG (no IEND chunk)');
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + length > bytes.length) throw new DataFileError(path, `truncated PNG (chunk ${type} of ${length} bytes runs past the end)`);
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== view.getUint32(at + 8 + length)) throw new DataFileError(path, `corrupt PNG (CRC mismatch in chunk ${type})`);
    at += 12 + length;
    if (type === 'IHDR') {
      const h = new DataView(data.buffer, data.byteOffset, data.byteLength);
      [width, height, depth, color] = [h.getUint32(0), h.getUint32(4), data[8], data[9]];
      if (!(color in CHANNELS)) throw new DataFileError(path, `PNG color type ${color} is not a valid one`);
      if (data[12] !== 0) throw new DataFileError(path, 'interlaced PNG (Adam7) is not supported; save it without interlacing');
      if (color !== 0 && color !== 3 && depth < 8) throw new DataFileError(path, `invalid PNG: bit depth ${depth} with color type ${color}`);
    } else if (type === 'PLTE') palette = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  if (width === 0 || height === 0) throw new DataFileError(path, 'PNG has no IHDR chunk or a zero size');
  if (color === 3 && !palette) throw new DataFileError(path, 'palette PNG without a PLTE chunk');
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new DataFileError(path, `corrupt PNG pixel data (${(e as Error).message})`);
  }
  const channels = CHANNELS[color];
  const bitsPerPixel = channels * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  if (raw.length !== height * (stride + 1)) throw new DataFileError(path, `PNG pixel data is ${raw.length} bytes, expected ${height * (stride + 1)} for ${width}x${height}`);
  const rows = unfilter(raw, height, stride, Math.max(1, bitsPerPixel >> 3), path);
  const max = color === 3 ? 255 : 2 ** depth - 1;
  const sample = (row: Uint8Array, k: number): number => {
    if (depth === 16) return (row[2 * k] << 8) | row[2 * k + 1];
    if (depth === 8) return row[k];
    const perByte = 8 / depth;
    return (row[Math.floor(k / perByte)] >> (8 - depth * ((k % perByte) + 1))) & ((1 << depth) - 1);
  };
  const pixels = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = rows.subarray(y * stride, (y + 1) * stride);
    for (let x = 0; x < width; x++) {
      let v: number[];
      if (color === 3) {
        const i = sample(row, x);
        if (3 * i + 2 >= palette!.length) throw new DataFileError(path, `palette index ${i} at (${x}, ${y}) is outside the ${palette!.length / 3}-entry palette`);
        v = [palette![3 * i], palette![3 * i + 1], palette![3 * i + 2]];
      } else v = Array.from({ length: channels }, (_, c) => sample(row, x * channels + c));
      const alpha = color === 4 ? v[1] : color === 6 ? v[3] : max;
      if (alpha !== max) throw new DataFileError(path, `${COLOR_NAMES[color]} PNG has a transparent pixel at (${x}, ${y}); save the images opaque`);
      if ((color === 2 || color === 6 || color === 3) && (v[0] !== v[1] || v[1] !== v[2])) {
        throw new DataFileError(path, `${COLOR_NAMES[color]} PNG has a colored pixel at (${x}, ${y}); the models take greyscale images: convert them first`);
      }
      pixels[y * width + x] = v[0] / max;
    }
  }
  return { width, height, pixels };
}

/** Reverses the per-row PNG filters (None, Sub, Up, Average, Paeth). */
function unfilter(raw: Uint8Array, height: number, stride: number, bpp: number, path: string): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = out.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? out.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp] : 0;
      const b = prev[i];
      const c = i >= bpp ? prev[i - bpp] : 0;
      let p: number;
      if (filter === 0) p = 0;
      else if (filter === 1) p = a;
      else if (filter === 2) p = b;
      else if (filter === 3) p = (a + b) >> 1;
      else if (filter === 4) {
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else throw new DataFileError(path, `PNG row ${y} has unknown filter type ${filter}`);
      cur[i] = (src[i] + p) & 0xff;
    }
  }
  return out;
}
