/**
 * USPS loaders. The main format is the ESL text version (`zip.train.gz` / `zip.test.gz`): one
 * sample per line, a digit label then 256 grey values in [-1, 1] (row-major 16x16, -1 =
 * background). The LIBSVM format (`label idx:val ...`, as in torchvision's `usps`/`usps.t`) is
 * read by `loadLibsvm`.
 */
import { statSync } from 'node:fs';
import { DataFileError, findDataFile, readMaybeGzipped, type DigitImages, type Split } from './mnist.js';

export const USPS_SIDE = 16;
const USPS_PIXELS = USPS_SIDE * USPS_SIDE;
const NUM_DIGIT_CLASSES = 10;
// The files store 3-4 decimals; anything beyond this slack is a corrupt value, not rounding.
const RANGE_EPSILON = 1e-6;

/** Maps a grey value in [-1, 1] (tiny overshoot clamped) to [0, 1]. */
function signedToUnit(value: number): number {
  const clamped = value < -1 ? -1 : value > 1 ? 1 : value;
  return (clamped + 1) / 2;
}

function isOutsideSignedRange(value: number): boolean {
  return value < -1 - RANGE_EPSILON || value > 1 + RANGE_EPSILON;
}

function parseNumber(path: string, lineNo: number, fieldNo: number, token: string): number {
  const value = Number(token);
  if (!Number.isFinite(value)) {
    throw new DataFileError(path, `line ${lineNo}, field ${fieldNo}: '${token}' is not a finite number`);
  }
  return value;
}

function parseLabel(path: string, lineNo: number, token: string, lowest: number, highest: number): number {
  const label = parseNumber(path, lineNo, 1, token);
  if (!Number.isInteger(label) || label < lowest || label > highest) {
    throw new DataFileError(path, `line ${lineNo}: label ${token} is not an integer in ${lowest}..${highest}`);
  }
  return label;
}

/** Splits decoded text into non-blank lines, keeping 1-based line numbers for error messages. */
function nonBlankLines(text: string): { line: string; lineNo: number }[] {
  const result: { line: string; lineNo: number }[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k].trim();
    if (line.length > 0) result.push({ line, lineNo: k + 1 });
  }
  return result;
}

const WHITESPACE = /\s+/;

/** The file's text (gunzipped if needed); latin1 maps bytes 1:1, so odd bytes cannot throw. */
function readText(path: string): string {
  const bytes = readMaybeGzipped(path);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Parses one ESL `zip.*` file (gzip or plain text) into 16x16 images in [0, 1]. */
export function loadEslDigits(path: string): DigitImages {
  const lines = nonBlankLines(readText(path));
  if (lines.length === 0) throw new DataFileError(path, 'contains no samples (empty file)');
  const n = lines.length;
  const images = new Float32Array(n * USPS_PIXELS);
  const labels = new Int32Array(n);
  const expectedFields = 1 + USPS_PIXELS;
  for (let s = 0; s < n; s++) {
    const { line, lineNo } = lines[s];
    const fields = line.split(WHITESPACE);
    if (fields.length !== expectedFields) {
      throw new DataFileError(
        path,
        `line ${lineNo}: ${fields.length} fields, expected ${expectedFields} (label + ${USPS_PIXELS} pixels)`,
      );
    }
    labels[s] = parseLabel(path, lineNo, fields[0], 0, NUM_DIGIT_CLASSES - 1);
    const base = s * USPS_PIXELS;
    for (let p = 0; p < USPS_PIXELS; p++) {
      const value = parseNumber(path, lineNo, p + 2, fields[p + 1]);
      if (isOutsideSignedRange(value)) {
        throw new DataFileError(path, `line ${lineNo}, field ${p + 2}: value ${fields[p + 1]} is outside [-1, 1]`);
      }
      images[base + p] = signedToUnit(value);
    }
  }
  return { images, labels, n, height: USPS_SIDE, width: USPS_SIDE };
}

/**
 * Loads the USPS train (7291) or test (2007) split. `dir` is the folder holding
 * `zip.train(.gz)` / `zip.test(.gz)`, or directly the path of one such file.
 */
export function loadUsps(dir: string, split: Split): DigitImages {
  const isFile = statSync(dir, { throwIfNoEntry: false })?.isFile() ?? false;
  const path = isFile ? dir : findDataFile(dir, [`zip.${split}.gz`, `zip.${split}`], `USPS ${split}`);
  return loadEslDigits(path);
}

export interface LibsvmOptions {
  /** Number of features; indices must lie in 1..dim. */
  dim: number;
  /** Labels are 1..numClasses in the file (torchvision's usps files use 1..10): subtract 1. */
  oneBasedLabels?: boolean;
  /** Number of classes for the label range check (default 10). */
  numClasses?: number;
  /** Values are in [-1, 1]: check that range and map to [0, 1] via (v + 1) / 2. */
  signedToUnit?: boolean;
}

export interface LibsvmData {
  /** Dense n*dim row-major features; indices absent from a line are 0 (before any rescaling). */
  features: Float32Array;
  labels: Int32Array;
  n: number;
  dim: number;
}

function parseLibsvmLine(
  path: string,
  lineNo: number,
  fields: string[],
  options: Required<LibsvmOptions>,
  row: Float64Array,
): number {
  const { dim, oneBasedLabels, numClasses } = options;
  const offset = oneBasedLabels ? 1 : 0;
  const label = parseLabel(path, lineNo, fields[0], offset, numClasses - 1 + offset) - offset;
  row.fill(0);
  let previousIndex = 0;
  for (let f = 1; f < fields.length; f++) {
    const token = fields[f];
    const colon = token.indexOf(':');
    const indexText = token.slice(0, colon);
    if (colon <= 0 || !/^\d+$/.test(indexText)) {
      throw new DataFileError(path, `line ${lineNo}, field ${f + 1}: '${token}' is not of the form index:value`);
    }
    const index = Number(indexText);
    if (index < 1 || index > dim) {
      throw new DataFileError(path, `line ${lineNo}, field ${f + 1}: index ${index} is outside 1..${dim}`);
    }
    if (index <= previousIndex) {
      throw new DataFileError(path, `line ${lineNo}, field ${f + 1}: index ${index} is not above the previous index ${previousIndex}`);
    }
    previousIndex = index;
    const value = parseNumber(path, lineNo, f + 1, token.slice(colon + 1));
    if (options.signedToUnit && isOutsideSignedRange(value)) {
      throw new DataFileError(path, `line ${lineNo}, field ${f + 1}: value ${value} is outside [-1, 1]`);
    }
    row[index - 1] = value;
  }
  return label;
}

/** Loads a LIBSVM-format file (gzip or plain text) into dense features. */
export function loadLibsvm(path: string, options: LibsvmOptions): LibsvmData {
  const resolved: Required<LibsvmOptions> = {
    oneBasedLabels: false,
    numClasses: NUM_DIGIT_CLASSES,
    signedToUnit: false,
    ...options,
  };
  const { dim } = resolved;
  if (!Number.isInteger(dim) || dim <= 0) throw new Error(`loadLibsvm: dim must be a positive integer, got ${dim}`);
  const lines = nonBlankLines(readText(path));
  if (lines.length === 0) throw new DataFileError(path, 'contains no samples (empty file)');
  const n = lines.length;
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const row = new Float64Array(dim);
  for (let s = 0; s < n; s++) {
    const { line, lineNo } = lines[s];
    labels[s] = parseLibsvmLine(path, lineNo, line.split(WHITESPACE), resolved, row);
    for (let d = 0; d < dim; d++) {
      features[s * dim + d] = resolved.signedToUnit ? signedToUnit(row[d]) : row[d];
    }
  }
  return { features, labels, n, dim };
}

/** Loads torchvision's LIBSVM USPS file (`usps` / `usps.t`, decompressed) as 16x16 images in [0, 1]. */
export function loadUspsLibsvm(path: string): DigitImages {
  const data = loadLibsvm(path, { dim: USPS_PIXELS, oneBasedLabels: true, signedToUnit: true });
  return { images: data.features, labels: data.labels, n: data.n, height: USPS_SIDE, width: USPS_SIDE };
}
