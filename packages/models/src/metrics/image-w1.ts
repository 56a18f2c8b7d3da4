/**
 * W1 between image sets with the pixel scale explicit: every value is reported as if pixels
 * were in [0, 1], whatever range the images are stored in (W1 scales linearly with the pixels,
 * so images in [-1, 1] give twice the [0, 1] value before the division here).
 */
import { gatherRows } from '../data/batches.js';
import { w1Gpu } from './gpu.js';

/** [lowest, highest] pixel value of the stored images, e.g. [-1, 1] for the models' sets. */
export type PixelRange = readonly [number, number];

export interface ImageW1Options {
  /** Pixels per image (channels x height x width). */
  dim: number;
  /** Range the images are stored in; W1 is returned in units where that range spans 1. */
  pixelRange: PixelRange;
}

function span(range: PixelRange): number {
  const s = range[1] - range[0];
  if (!(s > 0) || !Number.isFinite(s)) throw new Error(`pixelRange must be [low, high] with low < high, got [${range.join(', ')}]`);
  return s;
}

/** Exact W1 (Euclidean cost) between the rows of a and b, on the [0, 1] pixel scale. */
export async function imageW1(a: Float32Array, b: Float32Array, o: ImageW1Options): Promise<number> {
  const s = span(o.pixelRange);
  if (a.length % o.dim !== 0 || b.length % o.dim !== 0) {
    throw new Error(`imageW1: sets of ${a.length} and ${b.length} values are not whole images of ${o.dim} pixels`);
  }
  return (await w1Gpu(a, b, a.length / o.dim, b.length / o.dim, o.dim)) / s;
}

/** Row indices (ascending) of each class present in labels. */
export function rowsByClass(labels: Int32Array): Map<number, Int32Array> {
  const rows = new Map<number, number[]>();
  labels.forEach((c, i) => (rows.get(c) ?? rows.set(c, []).get(c)!).push(i));
  return new Map([...rows].sort(([a], [b]) => a - b).map(([c, r]) => [c, Int32Array.from(r)]));
}

/**
 * W1 per class between a and b, on the [0, 1] pixel scale. Both sets must hold the same labels
 * with the same counts (a label-matched pair), so each class is an equal-size assignment; classes
 * with fewer than 2 images are left out.
 */
export async function perClassW1(a: Float32Array, aLabels: Int32Array, b: Float32Array, bLabels: Int32Array, o: ImageW1Options): Promise<Record<string, number>> {
  const ra = rowsByClass(aLabels);
  const rb = rowsByClass(bLabels);
  const out: Record<string, number> = {};
  for (const [c, rows] of ra) {
    const other = rb.get(c);
    if (!other || other.length !== rows.length) {
      throw new Error(`perClassW1: class ${c} has ${rows.length} images in one set and ${other?.length ?? 0} in the other; the sets must be label-matched`);
    }
    if (rows.length < 2) continue;
    out[c] = await imageW1(gatherRows(a, o.dim, rows), gatherRows(b, o.dim, other), o);
  }
  if (rb.size !== ra.size) throw new Error(`perClassW1: the sets hold different classes (${[...ra.keys()].join(',')} against ${[...rb.keys()].join(',')})`);
  return out;
}

/**
 * Rows of a pool that match a wanted label multiset: for each wanted label, a distinct pool row
 * of that class, drawn by a seeded shuffle of the class's rows (for a label-matched floor).
 */
export function labelMatchedRows(poolLabels: Int32Array, wanted: Int32Array, shuffle: (rows: Int32Array) => Int32Array): Int32Array {
  const pool = new Map([...rowsByClass(poolLabels)].map(([c, rows]) => [c, shuffle(Int32Array.from(rows))]));
  const used = new Map<number, number>();
  return Int32Array.from(wanted, (c) => {
    const rows = pool.get(c);
    const k = used.get(c) ?? 0;
    if (!rows || k >= rows.length) throw new Error(`labelMatchedRows: the pool has ${rows?.length ?? 0} images of class ${c}, fewer than the ${wanted.filter((x) => x === c).length} wanted`);
    used.set(c, k + 1);
    return rows[k];
  });
}
