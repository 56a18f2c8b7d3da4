/**
 * Minimal PNG encoder (8-bit greyscale) and image grids, for sample sheets; browser-safe. The
 * zlib stream is stored (uncompressed) blocks unless the caller passes a compressor (the Node
 * file writer in png_file.ts passes node:zlib's deflateSync). The CRC-32 table is computed once.
 */

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
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

export function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  // 5552 is zlib's NMAX: the most bytes before b can overflow 2^32 without a modulo.
  for (let start = 0; start < bytes.length; start += 5552) {
    const end = Math.min(bytes.length, start + 5552);
    for (let i = start; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 BTYPE 00): valid everywhere, no compression. */
export function zlibStore(data: Uint8Array): Uint8Array {
  const MAX_BLOCK = 65535;
  const blocks = Math.max(1, Math.ceil(data.length / MAX_BLOCK));
  const out = new Uint8Array(2 + blocks * 5 + data.length + 4);
  out[0] = 0x78; // deflate, 32 KiB window
  out[1] = 0x01; // no dictionary, fastest level; (0x78 * 256 + 0x01) % 31 == 0
  let o = 2;
  for (let k = 0; k < blocks; k++) {
    const start = k * MAX_BLOCK;
    const len = Math.min(MAX_BLOCK, data.length - start);
    out[o] = k === blocks - 1 ? 1 : 0;
    out[o + 1] = len & 0xff;
    out[o + 2] = len >>> 8;
    out[o + 3] = ~len & 0xff;
    out[o + 4] = (~len >>> 8) & 0xff;
    out.set(data.subarray(start, start + len), o + 5);
    o += 5 + len;
  }
  new DataView(out.buffer).setUint32(o, adler32(data));
  return out;
}

/**
 * Encodes greyscale pixels (row-major, 0..255) as a PNG file's bytes. `zlib` turns the filtered
 * rows into a zlib stream (default: stored blocks, which any PNG reader accepts).
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, zlib: (raw: Uint8Array) => Uint8Array = zlibStore): Uint8Array {
  if (pixels.length !== width * height) throw new Error(`encodePng: ${pixels.length} pixels do not fill ${width}x${height}`);
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // 8-bit, greyscale, deflate, adaptive filter, no interlace
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const signature = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);
  const parts = [signature, chunk('IHDR', header), chunk('IDAT', zlib(raw)), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
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
