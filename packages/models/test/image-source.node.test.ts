/**
 * Bring-your-own-data loaders: a folder of PNGs per class, CSV/TSV, NumPy .npy, IDX and ESL text,
 * each read back against the values written, and malformed files refused with the exact error.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePng, inferPixelRange, loadImageSource, loadNpy } from '../src/node.js';
import { crc32, encodePng } from '../src/io/png.js';

const dir = mkdtempSync(join(tmpdir(), 'transfuse-sources-'));

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A PNG with the given IHDR fields and raw scanlines (filter byte included), written naively. */
function png(width: number, height: number, depth: number, color: number, scanlines: Uint8Array, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([depth, color, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), ...extra, chunk('IDAT', deflateSync(scanlines)), chunk('IEND', new Uint8Array(0))]);
}

/** Filters one 8-bit greyscale row with PNG filter f against the previous row (the spec's formulas). */
function filterRow(f: number, row: number[], prev: number[]): number[] {
  return row.map((x, i) => {
    const a = i > 0 ? row[i - 1] : 0;
    const b = prev[i];
    const c = i > 0 ? prev[i - 1] : 0;
    const p = a + b - c;
    const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
    const pred = [0, a, b, Math.floor((a + b) / 2), paeth][f];
    return (x - pred + 256) & 255;
  });
}

describe('PNG decoding', () => {
  it('reads 8-bit greyscale rows under all five filters', () => {
    const rows = [[0, 255, 17, 200, 3], [9, 8, 250, 1, 128], [77, 66, 55, 44, 33], [1, 2, 3, 4, 5], [255, 0, 255, 0, 255]];
    const lines = rows.flatMap((row, y) => [y, ...filterRow(y, row, y > 0 ? rows[y - 1] : [0, 0, 0, 0, 0])]);
    const img = decodePng(png(5, 5, 8, 0, Uint8Array.from(lines)), 'filters.png');
    expect(Array.from(img.pixels, (v) => Math.round(v * 255))).toEqual(rows.flat());
  });

  it('reads 1-bit and 16-bit greyscale and grey RGB; refuses color, transparency and corruption', () => {
    // 1 bit, width 3: bits 101 -> 1, 0, 1
    expect(Array.from(decodePng(png(3, 1, 1, 0, Uint8Array.from([0, 0b10100000])), 'a.png').pixels)).toEqual([1, 0, 1]);
    expect(decodePng(png(1, 1, 16, 0, Uint8Array.from([0, 0x80, 0x00])), 'b.png').pixels[0]).toBeCloseTo(0x8000 / 65535, 7);
    expect(decodePng(png(1, 1, 8, 2, Uint8Array.from([0, 51, 51, 51])), 'c.png').pixels[0]).toBeCloseTo(0.2, 7);
    expect(() => decodePng(png(2, 1, 8, 2, Uint8Array.from([0, 5, 5, 5, 1, 2, 3])), 'color.png')).toThrow('color.png: RGB PNG has a colored pixel at (1, 0); the models take greyscale images: convert them first');
    expect(() => decodePng(png(1, 1, 8, 4, Uint8Array.from([0, 9, 100])), 'alpha.png')).toThrow('alpha.png: greyscale+alpha PNG has a transparent pixel at (0, 0); save the images opaque');
    const good = png(1, 1, 8, 0, Uint8Array.from([0, 7]));
    const bad = Buffer.from(good);
    bad[bad.length - 20] ^= 1; // inside IDAT
    expect(() => decodePng(bad, 'crc.png')).toThrow('crc.png: corrupt PNG (CRC mismatch in chunk IDAT)');
    expect(() => decodePng(Buffer.from('hello world'), 'text.png')).toThrow('text.png: not a PNG file (bad signature)');
  });
});

describe('loadImageSource', () => {
  it('a folder of PNGs per class: labels from numeric folder names, pixels in [0, 1]', () => {
    const root = join(dir, 'pngs');
    for (const c of [3, 7]) {
      mkdirSync(join(root, String(c)), { recursive: true });
      for (let k = 0; k < 2; k++) writeFileSync(join(root, String(c), `${k}.png`), encodePng(Uint8Array.from([c * 10 + k, 0, 255, 51]), 2, 2));
    }
    const s = loadImageSource(root);
    expect([s.format, s.n, s.height, s.width]).toEqual(['png-folder', 4, 2, 2]);
    expect(Array.from(s.labels)).toEqual([3, 3, 7, 7]);
    expect(Array.from(s.images.subarray(8, 12), (v) => Math.round(v * 255))).toEqual([70, 0, 255, 51]);
    mkdirSync(join(root, '9'));
    writeFileSync(join(root, '9', 'big.png'), encodePng(new Uint8Array(9), 3, 3));
    expect(() => loadImageSource(root)).toThrow(`${join(root, '9', 'big.png')}: image is 3x3, but ${join(root, '3', '0.png')} is 2x2; all images must have one size`);
  });

  it('CSV and TSV: label column first, bytes inferred as 0..255, floats in [0, 1], header skipped', () => {
    writeFileSync(join(dir, 'a.csv'), 'label,p0,p1,p2,p3\n1,0,255,51,102\n0,255,0,0,0\n');
    const c = loadImageSource(join(dir, 'a.csv'));
    expect([c.format, c.n, c.height, c.pixelRange]).toEqual(['csv', 2, 2, [0, 255]]);
    expect(Array.from(c.images.subarray(0, 4))).toEqual(Array.from(Float32Array.from([0, 1, 0.2, 0.4])));
    expect(Array.from(c.labels)).toEqual([1, 0]);
    writeFileSync(join(dir, 'b.tsv'), '2\t0.5\t0\t1\t0.25\n');
    const t = loadImageSource(join(dir, 'b.tsv'));
    expect([t.format, t.pixelRange, Array.from(t.images)]).toEqual(['tsv', [0, 1], [0.5, 0, 1, 0.25]]);
    writeFileSync(join(dir, 'short.csv'), '1,0,0,0,0\n2,0,0,0\n');
    expect(() => loadImageSource(join(dir, 'short.csv'))).toThrow(`${join(dir, 'short.csv')}: line 2: 4 fields, expected 5 (label + 4 pixels, as in the first row)`);
    writeFileSync(join(dir, 'odd.csv'), '1,0,0,0\n');
    expect(() => loadImageSource(join(dir, 'odd.csv'))).toThrow('line 1: 3 pixel columns after the label are not a square image');
    writeFileSync(join(dir, 'nan.csv'), '1,0,x,0,0\n');
    expect(() => loadImageSource(join(dir, 'nan.csv'))).toThrow("line 1, field 3: 'x' is not a finite number");
    writeFileSync(join(dir, 'range.csv'), '1,0,300,0,0\n');
    expect(() => loadImageSource(join(dir, 'range.csv'))).toThrow('pixel values span [0, 300], which fits none of [0, 1], [-1, 1], 0..255; pass the range (--pixel-range LOW,HIGH)');
    expect(() => loadImageSource(join(dir, 'range.csv'), { pixelRange: [0, 255] })).toThrow('pixel values span [0, 300], outside the given range [0, 255]');
  });

  it('inferPixelRange', () => {
    expect(inferPixelRange(0, 1, false)).toEqual([0, 1]);
    expect(inferPixelRange(-0.5, 1, false)).toEqual([-1, 1]);
    expect(inferPixelRange(0, 200.5, false)).toEqual([0, 255]);
    expect(inferPixelRange(0, 1, true)).toEqual([0, 255]);
    expect(inferPixelRange(-3, 1, false)).toBeNull();
  });

  /** A version-1 .npy file, written as numpy.save does. */
  function npy(descr: string, shape: number[], body: Uint8Array, fortran = false): Buffer {
    let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
    header += ' '.repeat(63 - ((header.length + 10) % 64)) + '\n';
    const pre = Buffer.alloc(10);
    pre.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    pre.writeUInt16LE(header.length, 8);
    return Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
  }

  it('.npy images (float32 in [-1, 1], shape (n, h, w)) with a sibling labels file', () => {
    const x = Float32Array.from([-1, 1, 0, 0.5, 1, 1, -1, -1]);
    writeFileSync(join(dir, 'x_train.npy'), npy('<f4', [2, 2, 2], new Uint8Array(x.buffer)));
    writeFileSync(join(dir, 'y_train.npy'), npy('<i8', [2], new Uint8Array(BigInt64Array.from([4n, 2n]).buffer)));
    const s = loadImageSource(join(dir, 'x_train.npy'));
    expect([s.format, s.n, s.height, s.width, s.pixelRange]).toEqual(['npy', 2, 2, 2, [-1, 1]]);
    expect(Array.from(s.images)).toEqual([0, 1, 0.5, 0.75, 1, 1, 0, 0]);
    expect(Array.from(s.labels)).toEqual([4, 2]);
    expect(loadNpy(join(dir, 'y_train.npy'))).toMatchObject({ dtype: '<i8', shape: [2], integer: true });
    writeFileSync(join(dir, 'f.npy'), npy('<f4', [1, 1], new Uint8Array(4), true));
    expect(() => loadNpy(join(dir, 'f.npy'))).toThrow(`${join(dir, 'f.npy')}: the array is in Fortran order; save it with numpy.ascontiguousarray first`);
    writeFileSync(join(dir, 'c.npy'), npy('<c8', [1], new Uint8Array(8)));
    expect(() => loadNpy(join(dir, 'c.npy'))).toThrow("dtype '<c8' is not supported");
    writeFileSync(join(dir, 'short.npy'), npy('<f4', [2, 3], new Uint8Array(20)));
    expect(() => loadNpy(join(dir, 'short.npy'))).toThrow("shape (2, 3) of dtype '<f4' needs 24 bytes but 20 follow the header");
    writeFileSync(join(dir, 'cube.npy'), npy('|u1', [2, 3], new Uint8Array(6)));
    expect(() => loadImageSource(join(dir, 'cube.npy'))).toThrow('shape (2, 3) is not a stack of greyscale images');
    mkdirSync(join(dir, 'lonely'));
    writeFileSync(join(dir, 'lonely', 'images.npy'), npy('|u1', [1, 4], new Uint8Array(4)));
    expect(() => loadImageSource(join(dir, 'lonely', 'images.npy'))).toThrow('no .npy labels file found');
    expect(() => loadImageSource(join(dir, "lonely", "images.npy"), { labels: join(dir, "y_train.npy") })).toThrow("has 2 labels but");
  });

  it('IDX images with their labels file (gzip), and ESL text', () => {
    const header = Buffer.alloc(16);
    header.writeInt32BE(2051, 0);
    header.writeInt32BE(1, 4);
    header.writeInt32BE(2, 8);
    header.writeInt32BE(2, 12);
    writeFileSync(join(dir, 'my-images-idx3-ubyte.gz'), gzipSync(Buffer.concat([header, Buffer.from([0, 51, 255, 102])])));
    const lh = Buffer.alloc(8);
    lh.writeInt32BE(2049, 0);
    lh.writeInt32BE(1, 4);
    writeFileSync(join(dir, 'my-labels-idx1-ubyte.gz'), gzipSync(Buffer.concat([lh, Buffer.from([6])])));
    const s = loadImageSource(join(dir, 'my-images-idx3-ubyte.gz'));
    expect([s.format, s.n, Array.from(s.labels)]).toEqual(['idx', 1, [6]]);
    expect(Array.from(s.images)).toEqual(Array.from(Float32Array.from([0, 0.2, 1, 0.4])));
    writeFileSync(join(dir, 'zip.mine'), `3 ${Array(256).fill('-1').join(' ')}\n`);
    const e = loadImageSource(join(dir, 'zip.mine'));
    expect([e.format, e.n, e.height, e.images[0], e.labels[0]]).toEqual(['esl', 1, 16, 0, 3]);
    writeFileSync(join(dir, 'what.bin'), Buffer.from([1, 2, 3, 250]));
    expect(() => loadImageSource(join(dir, 'what.bin'))).toThrow(`${join(dir, 'what.bin')}: unknown image format`);
    expect(() => loadImageSource(join(dir, 'missing'))).toThrow(`${join(dir, 'missing')}: no such file or folder`);
  });
});
