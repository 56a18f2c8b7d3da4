/** The PNG encoder without Node: CRC-32, Adler-32 and the stored-block zlib stream against closed forms and an independent inflater. */
import { describe, expect, test } from 'vitest';
import { adler32, crc32, encodePng, imageGrid, zlibStore } from '../src/io/png.js';

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Inflates a zlib stream with the platform's DecompressionStream (browsers and Node 18+), not with our code. */
async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

describe('PNG encoder (browser-safe)', () => {
  test('checksums match their published values', () => {
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(adler32(ascii('Wikipedia'))).toBe(0x11e60398);
    expect(adler32(new Uint8Array(0))).toBe(1);
    // Long runs of 0xff: the modulo must be taken before b overflows (zlib's NMAX).
    const ones = new Uint8Array(100_003).fill(255);
    let a = 1;
    let b = 0;
    for (const v of ones) {
      a = (a + v) % 65521;
      b = (b + a) % 65521;
    }
    expect(adler32(ones)).toBe(((b << 16) | a) >>> 0);
  });

  test('zlibStore round-trips through an independent inflater at 0, 1, 65535 and 65536+ bytes', async () => {
    for (const n of [0, 1, 65535, 65536, 140_001]) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >> 8)) & 0xff);
      const got = await inflate(zlibStore(data));
      expect(got.length, `n=${n}`).toBe(n);
      expect(got.findIndex((v, i) => v !== data[i]), `n=${n}: first differing byte`).toBe(-1);
    }
  });

  test('encodePng writes the signature, IHDR and the filtered rows of an odd-sized image', async () => {
    const { pixels, width, height } = imageGrid(Float32Array.from({ length: 3 * 5 * 7 }, (_, i) => Math.sin(i)), 3, 5, 7, 2);
    const png = encodePng(pixels, width, height);
    expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const view = new DataView(png.buffer, png.byteOffset);
    expect(String.fromCharCode(...png.subarray(12, 16))).toBe('IHDR');
    expect([view.getUint32(16), view.getUint32(20)]).toEqual([width, height]);
    const idatLength = view.getUint32(33);
    expect(String.fromCharCode(...png.subarray(37, 41))).toBe('IDAT');
    expect(view.getUint32(41 + idatLength)).toBe(crc32(png.subarray(37, 41 + idatLength)));
    const rows = await inflate(png.subarray(41, 41 + idatLength));
    expect(rows.length).toBe(height * (width + 1));
    for (let y = 0; y < height; y++) {
      expect(rows[y * (width + 1)]).toBe(0);
      expect(rows.subarray(y * (width + 1) + 1, (y + 1) * (width + 1))).toEqual(pixels.subarray(y * width, (y + 1) * width));
    }
  });
});
