/**
 * A user's own image set, from one path (Node-only): a folder of PNGs per class, a CSV/TSV table,
 * a NumPy `.npy` array (with a labels array), an IDX image file (with its IDX labels) or an ESL
 * text file. Pixels come back in [0, 1]; the range they were read from is explicit (given, or
 * inferred from the values and reported), never guessed silently.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { PixelRange } from '../metrics/image-w1.js';
import { loadDelimited, type NumericImages } from './delimited.js';
import { DataFileError, loadIdxImages, loadIdxLabels, readMaybeGzipped, type DigitImages } from './mnist.js';
import { loadNpy } from './npy.js';
import { decodePng } from './png-decode.js';
import { loadEslDigits } from './usps.js';

export type ImageFormat = 'png-folder' | 'csv' | 'tsv' | 'npy' | 'idx' | 'esl';

export interface LoadedImages extends DigitImages {
  format: ImageFormat;
  /** The range the stored pixels were mapped from to [0, 1]. */
  pixelRange: PixelRange;
  /** Folder names of the classes, by label (PNG folders whose class folders are not numbers). */
  classNames?: string[];
}

export interface ImageSourceOptions {
  /** Labels file for .npy and IDX images (default: the matching file beside the images). */
  labels?: string;
  /** Range of the stored pixel values (default: inferred; see inferPixelRange). */
  pixelRange?: PixelRange;
}

export function loadImageSource(path: string, o: ImageSourceOptions = {}): LoadedImages {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new DataFileError(path, 'no such file or folder');
  if (st.isDirectory()) return loadPngFolder(path);
  const bytes = readMaybeGzipped(path);
  const ext = extname(path.replace(/\.gz$/, '')).toLowerCase();
  if (bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 8 && bytes[3] === 3) return fromIdx(path, o);
  if (bytes[0] === 0x93 && bytes[1] === 0x4e) return fromNpy(path, o);
  if (ext === '.csv' || ext === '.tsv') {
    const format = ext === '.csv' ? 'csv' : 'tsv';
    return normalize(path, format, loadDelimited(path, format === 'csv' ? ',' : '\t'), o.pixelRange);
  }
  const head = Buffer.from(bytes.subarray(0, 4096)).toString('latin1');
  if (/^[\s\d.eE+-]+$/.test(head.split('\n')[0] ?? '')) return { ...loadEslDigits(path), format: 'esl', pixelRange: [-1, 1] };
  throw new DataFileError(path, 'unknown image format (expected a folder of PNGs per class, .csv, .tsv, .npy, an IDX image file or ESL text)');
}

/** DIR/<class>/*.png (or DIR/*.png as one class 0); class folders named by numbers keep them as labels. */
function loadPngFolder(dir: string): LoadedImages {
  const entries = readdirSync(dir, { withFileTypes: true });
  const classDirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const groups: [string, string][] = classDirs.length ? classDirs.map((c) => [c, join(dir, c)]) : [['0', dir]];
  const numeric = groups.every(([c]) => /^\d+$/.test(c));
  const files: { path: string; label: number }[] = [];
  groups.forEach(([c, folder], k) => {
    const pngs = readdirSync(folder).filter((f) => f.toLowerCase().endsWith('.png')).sort();
    for (const f of pngs) files.push({ path: join(folder, f), label: numeric ? Number(c) : k });
  });
  if (files.length === 0) throw new DataFileError(dir, 'no .png files found (expected DIR/<class>/*.png)');
  const first = decodePng(readFileSync(files[0].path), files[0].path);
  const d = first.width * first.height;
  const images = new Float32Array(files.length * d);
  files.forEach(({ path }, i) => {
    const img = i === 0 ? first : decodePng(readFileSync(path), path);
    if (img.width !== first.width || img.height !== first.height) {
      throw new DataFileError(path, `image is ${img.width}x${img.height}, but ${files[0].path} is ${first.width}x${first.height}; all images must have one size`);
    }
    images.set(img.pixels, i * d);
  });
  return {
    images,
    labels: Int32Array.from(files, (f) => f.label),
    n: files.length,
    height: first.height,
    width: first.width,
    format: 'png-folder',
    pixelRange: [0, 1],
    ...(numeric ? {} : { classNames: groups.map(([c]) => c) }),
  };
}

/** The labels file beside `images`: the same name with images -> labels (and idx3 -> idx1), else labels.npy. */
function siblingLabels(images: string, given: string | undefined, what: string): string {
  if (given) return given;
  const name = basename(images);
  const candidates = [name.replace(/images/g, 'labels').replace(/idx3/g, 'idx1'), name.replace(/^x/i, 'y'), 'labels.npy']
    .filter((c) => c !== name)
    .map((c) => join(dirname(images), c));
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new DataFileError(images, `no ${what} labels file found (looked for ${candidates.join(', ')}); pass one with --source-labels / --target-labels`);
  return found;
}

function fromIdx(path: string, o: ImageSourceOptions): LoadedImages {
  const img = loadIdxImages(path);
  const labelsPath = siblingLabels(path, o.labels, 'IDX');
  const labels = loadIdxLabels(labelsPath);
  if (labels.length !== img.n) throw new DataFileError(labelsPath, `has ${labels.length} labels but ${path} has ${img.n} images`);
  return { ...img, labels, format: 'idx', pixelRange: [0, 255] };
}

function fromNpy(path: string, o: ImageSourceOptions): LoadedImages {
  const a = loadNpy(path);
  const s = a.shape;
  let [n, height, width] = [s[0], 0, 0];
  if (s.length === 3) [height, width] = [s[1], s[2]];
  else if (s.length === 4 && (s[3] === 1 || s[1] === 1)) [height, width] = s[3] === 1 ? [s[1], s[2]] : [s[2], s[3]];
  else if (s.length === 2 && Math.round(Math.sqrt(s[1])) ** 2 === s[1]) height = width = Math.round(Math.sqrt(s[1]));
  else throw new DataFileError(path, `shape (${s.join(', ')}) is not a stack of greyscale images (use (n, h, w), (n, h, w, 1), (n, 1, h, w) or (n, side*side))`);
  const labelsPath = siblingLabels(path, o.labels, '.npy');
  const l = loadNpy(labelsPath);
  if (l.shape.length !== 1 || !l.integer) throw new DataFileError(labelsPath, `labels must be a 1-D integer array, got dtype '${l.dtype}' shape (${l.shape.join(', ')})`);
  if (l.shape[0] !== n) throw new DataFileError(labelsPath, `has ${l.shape[0]} labels but ${path} has ${n} images`);
  const bad = l.data.findIndex((v) => v < 0);
  if (bad >= 0) throw new DataFileError(labelsPath, `label ${l.data[bad]} at index ${bad} is negative`);
  return normalize(path, 'npy', { values: a.data, labels: Int32Array.from(l.data), n, height, width, integer: a.integer }, o.pixelRange);
}

/**
 * The range of stored pixel values, from their extremes: whole numbers in 0..255 are bytes;
 * other values are [0, 1] when all lie there, else [-1, 1], else 0..255; null when none fits.
 */
export function inferPixelRange(min: number, max: number, integer: boolean): PixelRange | null {
  const inside = (lo: number, hi: number) => min >= lo && max <= hi;
  if (integer) return inside(0, 255) ? [0, 255] : inside(-1, 1) ? [-1, 1] : null;
  return inside(0, 1) ? [0, 1] : inside(-1, 1) ? [-1, 1] : inside(0, 255) ? [0, 255] : null;
}

function normalize(path: string, format: ImageFormat, a: NumericImages, given?: PixelRange): LoadedImages {
  let [min, max] = [Infinity, -Infinity];
  for (const v of a.values) [min, max] = [Math.min(min, v), Math.max(max, v)];
  const range = given ?? inferPixelRange(min, max, a.integer);
  if (!range) throw new DataFileError(path, `pixel values span [${min}, ${max}], which fits none of [0, 1], [-1, 1], 0..255; pass the range (--pixel-range LOW,HIGH)`);
  const [lo, hi] = range;
  if (min < lo || max > hi) throw new DataFileError(path, `pixel values span [${min}, ${max}], outside the given range [${lo}, ${hi}]`);
  const images = Float32Array.from(a.values, (v) => (v - lo) / (hi - lo));
  return { images, labels: a.labels, n: a.n, height: a.height, width: a.width, format, pixelRange: range };
}
