/**
 * MNIST loader for the original IDX files (big-endian headers, unsigned-byte payloads),
 * gzip-compressed or raw. Shared pieces used by the other loaders live here too: the dataset
 * shape, the error type that names the offending file, and the gzip-aware file reader.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** A labelled image set: `images` is n*height*width row-major values in [0, 1]. */
export interface DigitImages {
  images: Float32Array;
  labels: Int32Array;
  n: number;
  height: number;
  width: number;
}

export type Split = 'train' | 'test';

/** A data file that cannot be read as the expected format; the message starts with the path. */
export class DataFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'DataFileError';
  }
}

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;
const BZIP2_MAGIC = 'BZh';

/**
 * Reads a file, gunzipping it when the name ends in `.gz` or the bytes start with the gzip
 * magic. A `.gz` name on non-gzip bytes is an error rather than a silent raw read, because it
 * usually means a truncated or mislabelled download.
 */
export function readMaybeGzipped(path: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw new DataFileError(path, `cannot read file (${(err as Error).message})`);
  }
  const hasGzipMagic = raw.length >= 2 && raw[0] === GZIP_MAGIC_0 && raw[1] === GZIP_MAGIC_1;
  if (path.endsWith('.gz') && !hasGzipMagic) {
    throw new DataFileError(path, `not a gzip file (expected magic 1f 8b, found ${hexPrefix(raw)})`);
  }
  if (raw.length >= 3 && raw.subarray(0, 3).toString('latin1') === BZIP2_MAGIC) {
    throw new DataFileError(path, 'bzip2-compressed; decompress it first (bunzip2), only gzip is read');
  }
  if (!hasGzipMagic) return raw;
  try {
    return gunzipSync(raw);
  } catch (err) {
    throw new DataFileError(path, `corrupt gzip data (${(err as Error).message})`);
  }
}

function hexPrefix(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'an empty file';
  return Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Returns the first candidate file that exists in `dir`, or throws listing all candidates. */
export function findDataFile(dir: string, candidates: readonly string[], what: string): string {
  for (const name of candidates) {
    const path = join(dir, name);
    if (existsSync(path) && statSync(path).isFile()) return path;
  }
  throw new DataFileError(dir, `no ${what} file found (looked for ${candidates.join(', ')})`);
}

const IDX_IMAGES_MAGIC = 2051; // 0x00000803: unsigned byte, 3 dimensions
const IDX_LABELS_MAGIC = 2049; // 0x00000801: unsigned byte, 1 dimension
const IDX_IMAGES_HEADER_BYTES = 16;
const IDX_LABELS_HEADER_BYTES = 8;
const NUM_DIGIT_CLASSES = 10;

// Byte → [0, 1] float table: one lookup per pixel instead of a division.
const BYTE_TO_UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

const IDX_KINDS: Record<number, string> = { [IDX_IMAGES_MAGIC]: 'an IDX images file', [IDX_LABELS_MAGIC]: 'an IDX labels file' };

/** Checks the magic first (a labels file read as images is named as such), then the header length. */
function checkHeader(path: string, bytes: Uint8Array, headerBytes: number, expected: number, kind: string): DataView {
  const header = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 4) {
    const magic = header.getInt32(0, false);
    if (magic !== expected) {
      const found = IDX_KINDS[magic] ? ` (${IDX_KINDS[magic]})` : '';
      throw new DataFileError(path, `magic ${magic}${found}, expected ${expected} (IDX unsigned-byte ${kind})`);
    }
  }
  if (bytes.length < headerBytes) {
    throw new DataFileError(
      path,
      `file is ${bytes.length} bytes, shorter than the ${headerBytes}-byte IDX ${kind} header (truncated?)`,
    );
  }
  return header;
}

/** Loads an IDX3 unsigned-byte image file; pixels are scaled from 0..255 to [0, 1]. */
export function loadIdxImages(path: string): { images: Float32Array; n: number; height: number; width: number } {
  const bytes = readMaybeGzipped(path);
  const header = checkHeader(path, bytes, IDX_IMAGES_HEADER_BYTES, IDX_IMAGES_MAGIC, 'images');
  const n = header.getInt32(4, false);
  const height = header.getInt32(8, false);
  const width = header.getInt32(12, false);
  if (n < 0 || height <= 0 || width <= 0) {
    throw new DataFileError(path, `invalid header dimensions: ${n} images of ${height}x${width}`);
  }
  const expectedBytes = n * height * width;
  const payloadBytes = bytes.length - IDX_IMAGES_HEADER_BYTES;
  if (payloadBytes !== expectedBytes) {
    throw new DataFileError(
      path,
      `header says ${n} images of ${height}x${width} = ${expectedBytes} bytes but ${payloadBytes} bytes follow the header`,
    );
  }
  const images = new Float32Array(expectedBytes);
  for (let k = 0, src = IDX_IMAGES_HEADER_BYTES; k < expectedBytes; k++, src++) {
    images[k] = BYTE_TO_UNIT[bytes[src]];
  }
  return { images, n, height, width };
}

/** Loads an IDX1 unsigned-byte label file and checks every label is a digit 0..9. */
export function loadIdxLabels(path: string): Int32Array {
  const bytes = readMaybeGzipped(path);
  const header = checkHeader(path, bytes, IDX_LABELS_HEADER_BYTES, IDX_LABELS_MAGIC, 'labels');
  const n = header.getInt32(4, false);
  const payloadBytes = bytes.length - IDX_LABELS_HEADER_BYTES;
  if (n < 0 || payloadBytes !== n) {
    throw new DataFileError(path, `header says ${n} labels but ${payloadBytes} bytes follow the header`);
  }
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const label = bytes[IDX_LABELS_HEADER_BYTES + k];
    if (label >= NUM_DIGIT_CLASSES) {
      throw new DataFileError(path, `label ${label} at index ${k} is outside 0..${NUM_DIGIT_CLASSES - 1}`);
    }
    labels[k] = label;
  }
  return labels;
}

function mnistCandidates(split: Split, kind: 'images' | 'labels'): string[] {
  const prefix = split === 'train' ? 'train' : 't10k';
  const rank = kind === 'images' ? 'idx3' : 'idx1';
  // The canonical names use a dash; the names stored inside the canonical gzip headers use a dot.
  const names = [`${prefix}-${kind}-${rank}-ubyte`, `${prefix}-${kind}.${rank}-ubyte`];
  return names.flatMap((name) => [`${name}.gz`, name]);
}

/** Loads the MNIST train (60000) or test (10000) split from a folder of IDX files. */
export function loadMnist(dir: string, split: Split): DigitImages {
  const imagesPath = findDataFile(dir, mnistCandidates(split, 'images'), `MNIST ${split} images`);
  const labelsPath = findDataFile(dir, mnistCandidates(split, 'labels'), `MNIST ${split} labels`);
  const { images, n, height, width } = loadIdxImages(imagesPath);
  const labels = loadIdxLabels(labelsPath);
  if (labels.length !== n) {
    throw new DataFileError(
      labelsPath,
      `has ${labels.length} labels but the images file ${imagesPath} has ${n} images`,
    );
  }
  return { images, labels, n, height, width };
}
