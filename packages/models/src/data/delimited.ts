/**
 * CSV / TSV image tables: one image per row, the class label in the first column and the pixels
 * (row-major, square images) in the others; an optional header row is skipped.
 */
import { DataFileError, readMaybeGzipped } from './mnist.js';

export interface NumericImages {
  values: Float64Array;
  labels: Int32Array;
  n: number;
  height: number;
  width: number;
  /** All values are whole numbers (the pixel range is then read as 0..255 when it fits). */
  integer: boolean;
}

export function loadDelimited(path: string, delimiter: ',' | '\t'): NumericImages {
  const bytes = readMaybeGzipped(path);
  const lines = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1').split('\n');
  const name = delimiter === ',' ? 'CSV' : 'TSV';
  const rows: { fields: string[]; lineNo: number }[] = [];
  lines.forEach((line, k) => {
    const t = line.trim();
    if (t.length > 0) rows.push({ fields: t.split(delimiter).map((f) => f.trim()), lineNo: k + 1 });
  });
  // A header names its columns: its first field is not a number.
  if (rows.length > 0 && !Number.isFinite(Number(rows[0].fields[0]))) rows.shift();
  if (rows.length === 0) throw new DataFileError(path, `${name} file has no data rows`);
  const d = rows[0].fields.length - 1;
  const side = Math.round(Math.sqrt(d));
  if (d < 1 || side * side !== d) throw new DataFileError(path, `line ${rows[0].lineNo}: ${d} pixel columns after the label are not a square image (label first, then side x side pixels)`);
  const values = new Float64Array(rows.length * d);
  const labels = new Int32Array(rows.length);
  let integer = true;
  rows.forEach(({ fields, lineNo }, r) => {
    if (fields.length !== d + 1) throw new DataFileError(path, `line ${lineNo}: ${fields.length} fields, expected ${d + 1} (label + ${d} pixels, as in the first row)`);
    const label = Number(fields[0]);
    if (!Number.isInteger(label) || label < 0) throw new DataFileError(path, `line ${lineNo}, field 1: label '${fields[0]}' is not a non-negative integer`);
    labels[r] = label;
    for (let p = 0; p < d; p++) {
      const v = Number(fields[p + 1]);
      if (fields[p + 1] === '' || !Number.isFinite(v)) throw new DataFileError(path, `line ${lineNo}, field ${p + 2}: '${fields[p + 1]}' is not a finite number`);
      if (!Number.isInteger(v)) integer = false;
      values[r * d + p] = v;
    }
  });
  return { values, labels, n: rows.length, height: side, width: side, integer };
}
