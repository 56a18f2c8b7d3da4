import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadIdxImages, loadIdxLabels, loadLibsvm, loadMnist, loadUsps, loadUspsLibsvm } from '../src/node.js';
import {
  apportion,
  classSubset,
  gatherRows,
  padImages,
  resizeImages,
  stratifiedSplit,
  subsample,
  toSigned,
  type DigitImages,
} from '../src/data/index.js';

// The real datasets live beside the repository (/work/shared/data for /work/main); TRANSFUSE_DATA overrides.
const DATA_DIR = process.env.TRANSFUSE_DATA ?? fileURLToPath(new URL('../../../../shared/data/', import.meta.url));
const MNIST_DIR = join(DATA_DIR, 'mnist');
const USPS_DIR = join(DATA_DIR, 'usps');

const MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
const USPS_TRAIN_COUNTS = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644];
const USPS_TEST_COUNTS = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177];

function classCounts(labels: Int32Array, indices?: Int32Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const idx of indices ?? labels.keys()) counts[labels[idx]]++;
  return counts;
}

function valueRange(values: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < values.length; k++) {
    if (values[k] < lo) lo = values[k];
    if (values[k] > hi) hi = values[k];
  }
  return [lo, hi];
}

describe('MNIST IDX loader on the real files', () => {
  let train: DigitImages;
  let trainCpuSeconds = 0;
  beforeAll(() => {
    // CPU time, not wall time: the limit is about the loader, not about other jobs on the machine.
    // Measured ~0.3 s CPU (gunzip of 47 MB plus the byte -> float conversion).
    const started = process.cpuUsage();
    train = loadMnist(MNIST_DIR, 'train');
    const used = process.cpuUsage(started);
    trainCpuSeconds = (used.user + used.system) / 1e6;
  });

  it('loads 60000 train images of 28x28 fast, labels with the known class counts', () => {
    expect(trainCpuSeconds).toBeLessThan(2);
    expect([train.n, train.height, train.width]).toEqual([60000, 28, 28]);
    expect(train.images.length).toBe(60000 * 28 * 28);
    expect(train.labels.length).toBe(60000);
    expect(classCounts(train.labels)).toEqual(MNIST_TRAIN_COUNTS);
    // The first training digits of MNIST are 5 0 4 1 9 2 1 3 1 4.
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  });

  it('scales pixels to [0, 1] in steps of 1/255, background 0', () => {
    expect(valueRange(train.images)).toEqual([0, 1]);
    expect(train.images[0]).toBe(0);
    let worstOffGrid = 0;
    for (let k = 0; k < train.images.length; k += 7) {
      const byte = train.images[k] * 255;
      worstOffGrid = Math.max(worstOffGrid, Math.abs(byte - Math.round(byte)));
    }
    // float32 of v/255 times 255 is within ~1e-5 of the integer v.
    expect(worstOffGrid).toBeLessThan(1e-4);
  });

  it('loads the 10000 test images with the known class counts', () => {
    const test = loadMnist(MNIST_DIR, 'test');
    expect([test.n, test.height, test.width]).toEqual([10000, 28, 28]);
    expect(classCounts(test.labels)).toEqual(MNIST_TEST_COUNTS);
    expect(Array.from(test.labels.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
  });
});

describe('USPS ESL loader on the real files', () => {
  it('loads 7291 train and 2007 test 16x16 digits with the known class counts', () => {
    const train = loadUsps(USPS_DIR, 'train');
    const test = loadUsps(USPS_DIR, 'test');
    expect([train.n, train.height, train.width]).toEqual([7291, 16, 16]);
    expect([test.n, test.height, test.width]).toEqual([2007, 16, 16]);
    expect(train.images.length).toBe(7291 * 256);
    expect(classCounts(train.labels)).toEqual(USPS_TRAIN_COUNTS);
    expect(classCounts(test.labels)).toEqual(USPS_TEST_COUNTS);
    expect(train.labels[0]).toBe(6);
    expect(test.labels[0]).toBe(9);
  });

  it('maps grey values from [-1, 1] to [0, 1] via (v + 1) / 2', () => {
    const train = loadUsps(join(USPS_DIR, 'zip.train.gz'), 'train');
    expect(valueRange(train.images)).toEqual([0, 1]);
    // Line 1 of zip.train: label 6.0000, seven -1.0000, then pixels 7 and 8 are -0.6310 and 0.8620.
    expect(train.images[7]).toBeCloseTo((1 - 0.631) / 2, 6);
    expect(train.images[8]).toBeCloseTo((1 + 0.862) / 2, 6);
    expect(train.images[0]).toBe(0);
  });
});

describe('splits and subsets', () => {
  let usps: DigitImages;
  beforeAll(() => {
    usps = loadUsps(USPS_DIR, 'train');
  });

  it('splits USPS train 0.3 into 5103 / 2188, per class by largest remainder', () => {
    const { train, test } = stratifiedSplit(usps.labels, 0.3, 0);
    expect([train.length, test.length]).toEqual([5103, 2188]);
    // Quotas 2188 * n_c / 7291: floors sum to 2183; the 5 largest fractions (5, 4, 8, 1, 7) get +1.
    expect(classCounts(usps.labels, test)).toEqual([358, 302, 219, 197, 196, 167, 199, 194, 163, 193]);
    // Digit 3: 658 images, quota 197.46 -> 197 test, 461 train.
    expect(classCounts(usps.labels, train)[3]).toBe(461);
    expect(classCounts(usps.labels, test)[3]).toBe(197);
    const all = new Set([...train, ...test]);
    expect(all.size).toBe(7291);
    expect(Array.from(test)).toEqual(Array.from(test).sort((a, b) => a - b));
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const first = stratifiedSplit(usps.labels, 0.3, 42);
    const again = stratifiedSplit(usps.labels, 0.3, 42);
    const other = stratifiedSplit(usps.labels, 0.3, 43);
    expect(Array.from(again.test)).toEqual(Array.from(first.test));
    expect(Array.from(again.train)).toEqual(Array.from(first.train));
    expect(Array.from(other.test)).not.toEqual(Array.from(first.test));
    expect(classCounts(usps.labels, other.test)).toEqual(classCounts(usps.labels, first.test));
  });

  it('apportion sums exactly and rounds each share to floor or ceil of its quota', () => {
    expect(Array.from(apportion([1, 1, 1], 2))).toEqual([1, 1, 0]);
    expect(Array.from(apportion([5, 3, 2], 5))).toEqual([3, 1, 1]);
    const shares = apportion(MNIST_TRAIN_COUNTS, 1000);
    expect(shares.reduce((s, x) => s + x, 0)).toBe(1000);
    shares.forEach((share, c) => expect(Math.abs(share - (1000 * MNIST_TRAIN_COUNTS[c]) / 60000)).toBeLessThan(1));
  });

  it('subsample draws k distinct indices, seeded, optionally stratified', () => {
    const plain = subsample(60000, 1000, 5);
    expect(plain.length).toBe(1000);
    expect(new Set(plain).size).toBe(1000);
    expect(plain.every((i) => i >= 0 && i < 60000)).toBe(true);
    expect(Array.from(subsample(60000, 1000, 5))).toEqual(Array.from(plain));
    expect(Array.from(subsample(60000, 1000, 6))).not.toEqual(Array.from(plain));

    const pool = stratifiedSplit(usps.labels, 0.3, 1).train;
    const strat = subsample(pool, 510, 2, { stratifyBy: usps.labels });
    expect(strat.length).toBe(510);
    const poolSet = new Set(pool);
    expect(strat.every((i) => poolSet.has(i))).toBe(true);
    expect(classCounts(usps.labels, strat)).toEqual(Array.from(apportion(classCounts(usps.labels, pool), 510)));
    expect(() => subsample(10, 11, 0)).toThrow(/k = 11 must be an integer in 0..10/);
  });

  it('classSubset and gatherRows select the requested items', () => {
    const labels = Int32Array.of(3, 1, 4, 1, 5, 9, 2, 6);
    expect(Array.from(classSubset(labels, [1, 9]))).toEqual([1, 3, 5]);
    const rows = Float32Array.of(0, 0, 1, 1, 2, 2, 3, 3);
    expect(Array.from(gatherRows(rows, 2, Int32Array.of(3, 1)))).toEqual([3, 3, 1, 1]);
  });
});

/** Float64 bilinear reference, written per output pixel from the PyTorch align_corners=False formula. */
function bilinearReference(img: ArrayLike<number>, h: number, w: number, H: number, W: number): number[] {
  const source = (o: number, inSize: number, outSize: number) => Math.max(0, ((o + 0.5) * inSize) / outSize - 0.5);
  const out: number[] = [];
  for (let Y = 0; Y < H; Y++) {
    for (let X = 0; X < W; X++) {
      const sy = source(Y, h, H);
      const sx = source(X, w, W);
      const y0 = Math.min(Math.floor(sy), h - 1);
      const x0 = Math.min(Math.floor(sx), w - 1);
      const y1 = Math.min(y0 + 1, h - 1);
      const x1 = Math.min(x0 + 1, w - 1);
      const ly = sy - y0;
      const lx = sx - x0;
      const at = (y: number, x: number) => img[y * w + x];
      out.push(
        (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)),
      );
    }
  }
  return out;
}

describe('preprocessing', () => {
  it('area 4x4 -> 2x2 gives the 2x2 block means', () => {
    const img = Float32Array.from({ length: 16 }, (_, k) => k);
    // Blocks {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}.
    expect(Array.from(resizeImages(img, 1, 4, 4, 2, 2, 'area'))).toEqual([2.5, 4.5, 10.5, 12.5]);
  });

  it('area 1x7 -> 1x4 weights fractional overlaps (ratio 1.75)', () => {
    const row = Float32Array.from([0, 1, 2, 3, 4, 5, 6]);
    // Output boxes [0,1.75), [1.75,3.5), [3.5,5.25), [5.25,7) in input pixels.
    const expected = [(0 + 0.75 * 1) / 1.75, (0.25 * 1 + 2 + 0.5 * 3) / 1.75, (0.5 * 3 + 4 + 0.25 * 5) / 1.75, (0.75 * 5 + 6) / 1.75];
    const got = resizeImages(row, 1, 1, 7, 1, 4, 'area');
    expected.forEach((v, k) => expect(got[k]).toBeCloseTo(v, 6));
  });

  it('area preserves the image mean for 28 -> 16 and keeps constants constant', () => {
    const rng = (k: number) => ((k * 2654435761) % 1000) / 1000;
    const img = Float32Array.from({ length: 2 * 28 * 28 }, (_, k) => rng(k));
    const small = resizeImages(img, 2, 28, 28, 16, 16, 'area');
    expect(small.length).toBe(2 * 256);
    for (let i = 0; i < 2; i++) {
      const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
      expect(mean(small.subarray(i * 256, (i + 1) * 256))).toBeCloseTo(mean(img.subarray(i * 784, (i + 1) * 784)), 5);
    }
    for (const mode of ['area', 'bilinear'] as const) {
      const flat = resizeImages(new Float32Array(16 * 16).fill(0.3), 1, 16, 16, 28, 28, mode);
      expect(flat.every((v) => Math.abs(v - 0.3) < 1e-6)).toBe(true);
    }
  });

  it('bilinear matches the float64 reference formula (up, down, non-square)', () => {
    const img = Float32Array.from({ length: 5 * 7 }, (_, k) => Math.sin(k * 1.3) * 0.5 + 0.5);
    for (const [H, W] of [
      [9, 13],
      [3, 4],
      [5, 7],
      [16, 28],
    ]) {
      const got = resizeImages(img, 1, 5, 7, H, W, 'bilinear');
      const want = bilinearReference(img, 5, 7, H, W);
      want.forEach((v, k) => expect(got[k]).toBeCloseTo(v, 6));
    }
    // 1-D hand case: [0, 1] -> 4 samples at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    expect(Array.from(resizeImages(Float32Array.of(0, 1), 1, 1, 2, 1, 4, 'bilinear'))).toEqual([0, 0.25, 0.75, 1]);
  });

  it('resizes real USPS 16 -> 28 and MNIST 28 -> 16 batches to the right shapes and range', () => {
    const usps = loadUsps(USPS_DIR, 'test');
    const up = resizeImages(usps.images.subarray(0, 10 * 256), 10, 16, 16, 28, 28, 'bilinear');
    expect(up.length).toBe(10 * 784);
    const [lo, hi] = valueRange(up);
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(1);
    const mnist = loadMnist(MNIST_DIR, 'test');
    const down = resizeImages(mnist.images.subarray(0, 10 * 784), 10, 28, 28, 16, 16, 'area');
    expect(down.length).toBe(10 * 256);
  });

  it('toSigned maps [0, 1] to [-1, 1]; padImages centres 28x28 in 32x32', () => {
    expect(Array.from(toSigned(Float32Array.of(0, 0.5, 1)))).toEqual([-1, 0, 1]);
    const img = new Float32Array(2 * 28 * 28).fill(1);
    const padded = padImages(img, 2, 28, 28, 32, 32, -1);
    expect(padded.length).toBe(2 * 32 * 32);
    expect(padded[0]).toBe(-1);
    expect(padded[2 * 32 + 1]).toBe(-1);
    expect(padded[2 * 32 + 2]).toBe(1);
    expect(padded[29 * 32 + 29]).toBe(1);
    expect(padded[30 * 32 + 29]).toBe(-1);
    expect(padded.reduce((s, v) => s + (v === 1 ? 1 : 0), 0)).toBe(2 * 784);
  });
});

describe('malformed files give errors naming the file and the problem', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'transfuse-data-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, bytes: Uint8Array | string) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  const idxHeader = (magic: number, dims: number[]) => {
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeInt32BE(magic, 0);
    dims.forEach((d, k) => header.writeInt32BE(d, 4 + 4 * k));
    return header;
  };
  const idxImages = (n: number, payloadBytes = n * 4) => Buffer.concat([idxHeader(2051, [n, 2, 2]), Buffer.alloc(payloadBytes)]);
  const idxLabels = (labels: number[]) => Buffer.concat([idxHeader(2049, [labels.length]), Buffer.from(labels)]);
  const uspsLine = (label: string, values: string[]) => `${label} ${values.join(' ')}\n`;
  const blank = () => new Array<string>(256).fill('-1');

  it('truncated IDX header', () => {
    const path = write('short-images-idx3-ubyte', Buffer.concat([idxHeader(2051, [1]), Buffer.alloc(2)]));
    expect(() => loadIdxImages(path)).toThrow(`${path}: file is 10 bytes, shorter than the 16-byte IDX images header`);
  });

  it('wrong magic (a labels file read as images, gzipped)', () => {
    const path = write('train-images-idx3-ubyte.gz', gzipSync(idxLabels([1, 2, 3, 4, 5, 6, 7, 8])));
    expect(() => loadIdxImages(path)).toThrow(`${path}: magic 2049 (an IDX labels file), expected 2051 (IDX unsigned-byte images)`);
    // A labels file shorter than an images header is still named by its magic, not called truncated.
    const small = write('few-labels-idx1-ubyte', idxLabels([1, 2, 3]));
    expect(() => loadIdxImages(small)).toThrow(`${small}: magic 2049 (an IDX labels file), expected 2051 (IDX unsigned-byte images)`);
    const labelsPath = write('images-as-labels', idxImages(2));
    expect(() => loadIdxLabels(labelsPath)).toThrow(`${labelsPath}: magic 2051 (an IDX images file), expected 2049 (IDX unsigned-byte labels)`);
  });

  it('header count larger than the data', () => {
    const path = write('big-header', Buffer.concat([idxHeader(2051, [60000, 28, 28]), Buffer.alloc(1000)]));
    expect(() => loadIdxImages(path)).toThrow(
      `${path}: header says 60000 images of 28x28 = 47040000 bytes but 1000 bytes follow the header`,
    );
  });

  it('images / labels count mismatch in a dataset folder', () => {
    const mnistDir = join(dir, 'mismatch');
    mkdirSync(mnistDir);
    writeFileSync(join(mnistDir, 't10k-images-idx3-ubyte'), idxImages(3));
    writeFileSync(join(mnistDir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxLabels([1, 2])));
    const labelsPath = join(mnistDir, 't10k-labels-idx1-ubyte.gz');
    expect(() => loadMnist(mnistDir, 'test')).toThrow(
      `${labelsPath}: has 2 labels but the images file ${join(mnistDir, 't10k-images-idx3-ubyte')} has 3 images`,
    );
    expect(() => loadMnist(mnistDir, 'train')).toThrow(`${mnistDir}: no MNIST train images file found (looked for train-images-idx3-ubyte.gz`);
  });

  it('label 11 in an IDX labels file', () => {
    const path = write('bad-labels', idxLabels([0, 9, 11, 3]));
    expect(() => loadIdxLabels(path)).toThrow(`${path}: label 11 at index 2 is outside 0..9`);
  });

  it('non-gzip garbage and truncated gzip behind a .gz name', () => {
    const garbage = write('garbage-idx3-ubyte.gz', 'this is not gzip at all');
    expect(() => loadIdxImages(garbage)).toThrow(`${garbage}: not a gzip file (expected magic 1f 8b, found 74 68 69 73)`);
    const truncated = write('zip.train.gz', gzipSync(uspsLine('1', blank()).repeat(50)).subarray(0, 40));
    expect(() => loadUsps(truncated, 'train')).toThrow(new RegExp(`^${escapeRegExp(truncated)}: corrupt gzip data \\(`));
  });

  it('USPS line with 200 fields', () => {
    const path = write('zip.fields', uspsLine('1', blank()) + uspsLine('2', blank().slice(0, 199)));
    expect(() => loadUsps(path, 'train')).toThrow(`${path}: line 2: 200 fields, expected 257 (label + 256 pixels)`);
  });

  it('USPS non-numeric field', () => {
    const values = blank();
    values[4] = '0.5x';
    const path = write('zip.text', uspsLine('3', values));
    expect(() => loadUsps(path, 'test')).toThrow(`${path}: line 1, field 6: '0.5x' is not a finite number`);
  });

  it('USPS label 12 and a fractional label', () => {
    const path = write('zip.label', uspsLine('12', blank()));
    expect(() => loadUsps(path, 'train')).toThrow(`${path}: line 1: label 12 is not an integer in 0..9`);
    const frac = write('zip.frac', uspsLine('4.0000', blank()) + uspsLine('6.5000', blank()));
    expect(() => loadUsps(frac, 'train')).toThrow(`${frac}: line 2: label 6.5000 is not an integer in 0..9`);
  });

  it('USPS value 3.5 outside [-1, 1] (tiny overshoot is accepted)', () => {
    const values = blank();
    values[9] = '3.5';
    const path = write('zip.range', uspsLine('0', values));
    expect(() => loadUsps(path, 'train')).toThrow(`${path}: line 1, field 11: value 3.5 is outside [-1, 1]`);
    values[9] = '1.0000001';
    const ok = loadUsps(write('zip.nearly', uspsLine('0', values)), 'train');
    expect(ok.images[9]).toBe(1);
  });

  it('empty files', () => {
    const usps = write('zip.empty', '');
    expect(() => loadUsps(usps, 'train')).toThrow(`${usps}: contains no samples (empty file)`);
    const gz = write('empty.gz', gzipSync(Buffer.alloc(0)));
    expect(() => loadIdxLabels(gz)).toThrow(`${gz}: file is 0 bytes, shorter than the 8-byte IDX labels header`);
    expect(() => loadUsps(join(dir, 'no-such-folder'), 'train')).toThrow(/no-such-folder: no USPS train file found/);
  });

  it('LIBSVM: bad index, malformed pair, label out of range', () => {
    const good = '1 1:-1 2:0.5 256:1\n10 3:0.25\n';
    const data = loadLibsvm(write('usps.ok', good), { dim: 256, oneBasedLabels: true, signedToUnit: true });
    expect(Array.from(data.labels)).toEqual([0, 9]);
    expect(Array.from(data.features.subarray(0, 3))).toEqual([0, 0.75, 0.5]);
    expect(data.features[255]).toBe(1);
    expect(loadUspsLibsvm(write('usps.ok2', good)).height).toBe(16);

    const badIndex = write('usps.index', '1 1:0.5 300:0.1\n');
    expect(() => loadLibsvm(badIndex, { dim: 256 })).toThrow(`${badIndex}: line 1, field 3: index 300 is outside 1..256`);
    const zeroIndex = write('usps.zero', '1 0:0.5\n');
    expect(() => loadLibsvm(zeroIndex, { dim: 256 })).toThrow(`${zeroIndex}: line 1, field 2: index 0 is outside 1..256`);
    const unordered = write('usps.order', '2 5:0.5 3:0.1\n');
    expect(() => loadLibsvm(unordered, { dim: 256 })).toThrow(`${unordered}: line 1, field 3: index 3 is not above the previous index 5`);
    const malformed = write('usps.pair', '2 5=0.5\n');
    expect(() => loadLibsvm(malformed, { dim: 256 })).toThrow(`${malformed}: line 1, field 2: '5=0.5' is not of the form index:value`);
    const label = write('usps.label', '3 1:0\n\n11 1:0\n');
    expect(() => loadLibsvm(label, { dim: 256, oneBasedLabels: true })).toThrow(`${label}: line 3: label 11 is not an integer in 1..10`);
    const range = write('usps.range', '3 1:-1.5\n');
    expect(() => loadLibsvm(range, { dim: 256, signedToUnit: true })).toThrow(`${range}: line 1, field 2: value -1.5 is outside [-1, 1]`);
  });

  it('bzip2 input is recognised instead of parsed as text', () => {
    const path = write('usps.bz2', Buffer.concat([Buffer.from('BZh91AY&SY'), Buffer.alloc(20)]));
    expect(() => loadLibsvm(path, { dim: 256 })).toThrow(`${path}: bzip2-compressed; decompress it first (bunzip2)`);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
