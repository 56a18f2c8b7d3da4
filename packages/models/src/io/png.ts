/**
 * Minimal PNG writer (8-bit greyscale) and image grids, for sample sheets. Uses node:zlib for
 * deflate; the CRC-32 table is computed once.
 */
import { deflateSync } from 'node:zlib';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(Buffer.from(type, 'latin1'), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Encodes greyscale pixels (row-major, 0..255) as a PNG file's bytes. */
export function encodePng(pixels: Uint8Array, width: number, height: number): Uint8Array {
  if (pixels.length !== width * height) throw new Error(`encodePng: ${pixels.length} pixels do not fill ${width}x${height}`);
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // 8-bit, greyscale, deflate, adaptive filter, no interlace
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const signature = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);
  const parts = [signature, chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))];
  return Buffer.concat(parts);
}

/**
 * Tiles n images of h x w (values in [lo, hi], row-major, one channel) into a grid of `cols`
 * columns with a 1-pixel border, as 0..255 pixels (ink white on black, like MNIST); each image
 * pixel becomes a `zoom` x `zoom` block so 16x16 digits stay readable.
 */
export function imageGrid(images: Float32Array, n: number, h: number, w: number, cols: number, range: [number, number] = [-1, 1], zoom = 3) {
  const rows = Math.ceil(n / cols);
  const [zh, zw] = [h * zoom, w * zoom];
  const width = cols * (zw + 1) + 1;
  const height = rows * (zh + 1) + 1;
  const pixels = new Uint8Array(width * height).fill(64);
  const [lo, hi] = range;
  for (let i = 0; i < n; i++) {
    const ox = (i % cols) * (zw + 1) + 1;
    const oy = Math.floor(i / cols) * (zh + 1) + 1;
    for (let y = 0; y < zh; y++) {
      for (let x = 0; x < zw; x++) {
        const v = (images[i * h * w + Math.floor(y / zoom) * w + Math.floor(x / zoom)] - lo) / (hi - lo);
        pixels[(oy + y) * width + ox + x] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
  }
  return { pixels, width, height };
}

/** Writes a PNG grid of images atomically (temp file + rename). */
export function savePngGrid(path: string, images: Float32Array, n: number, h: number, w: number, cols: number, range?: [number, number]): void {
  const g = imageGrid(images, n, h, w, cols, range);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, encodePng(g.pixels, g.width, g.height));
  renameSync(tmp, path);
}
