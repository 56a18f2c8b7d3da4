/**
 * Seeded, deterministic index splits and subsets. All returned index arrays are sorted
 * ascending so a result does not depend on hash or iteration order; shuffle for batching.
 */
import { createRng, shuffleInPlace, type Rng } from './prng.js';

export interface IndexSplit {
  train: Int32Array;
  test: Int32Array;
}

/** Indices of each class, in ascending order; classes are 0..max(label). */
function indicesByClass(labels: Int32Array): Int32Array[] {
  let numClasses = 0;
  for (let k = 0; k < labels.length; k++) {
    const label = labels[k];
    if (label < 0) throw new Error(`labels must be non-negative class ids, found ${label} at index ${k}`);
    if (label + 1 > numClasses) numClasses = label + 1;
  }
  const counts = new Int32Array(numClasses);
  for (let k = 0; k < labels.length; k++) counts[labels[k]]++;
  const byClass = Array.from(counts, (count) => new Int32Array(count));
  const filled = new Int32Array(numClasses);
  for (let k = 0; k < labels.length; k++) {
    const label = labels[k];
    byClass[label][filled[label]++] = k;
  }
  return byClass;
}

/**
 * Splits `total` items among groups proportionally to `sizes` (Hamilton / largest-remainder):
 * each group gets floor(quota) and the leftover units go to the largest fractional parts,
 * ties to the lower group index. The result sums to exactly `total` and never exceeds a size.
 */
export function apportion(sizes: ArrayLike<number>, total: number): Int32Array {
  let population = 0;
  for (let g = 0; g < sizes.length; g++) population += sizes[g];
  if (!Number.isInteger(total) || total < 0 || total > population) {
    throw new Error(`apportion: total ${total} must be an integer in 0..${population}`);
  }
  const shares = new Int32Array(sizes.length);
  if (population === 0) return shares;
  const remainders: { group: number; fraction: number }[] = [];
  let assigned = 0;
  for (let g = 0; g < sizes.length; g++) {
    // Integer numerator keeps the quota exact until the final division.
    const quota = (total * sizes[g]) / population;
    shares[g] = Math.floor(quota);
    assigned += shares[g];
    remainders.push({ group: g, fraction: quota - shares[g] });
  }
  remainders.sort((x, y) => y.fraction - x.fraction || x.group - y.group);
  for (let r = 0; assigned < total; r++, assigned++) shares[remainders[r].group]++;
  return shares;
}

/** Number of test items for a fraction, rounded up like sklearn's train_test_split. */
export function testCount(n: number, testFraction: number): number {
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`testFraction must be in (0, 1), got ${testFraction}`);
  // The epsilon stops float noise (e.g. 0.3 * 10 = 3.0000000000000004) from adding one item.
  return Math.min(n, Math.ceil(testFraction * n - 1e-9));
}

function sortedCopy(values: Int32Array): Int32Array {
  return Int32Array.from(values).sort();
}

/**
 * Stratified train/test split. The total test size is ceil(testFraction * n) (sklearn's rule)
 * and it is shared among classes by largest remainder, so each class gets floor or ceil of
 * testFraction * n_c. Within each class the test items are a seeded random subset.
 * USPS train (7291) with 0.3 → 5103 train / 2188 test; digit 3 (658) → 461 / 197.
 */
export function stratifiedSplit(labels: Int32Array, testFraction: number, seed: number): IndexSplit {
  const byClass = indicesByClass(labels);
  const testPerClass = apportion(
    byClass.map((members) => members.length),
    testCount(labels.length, testFraction),
  );
  const rng = createRng(seed);
  const train: number[] = [];
  const test: number[] = [];
  byClass.forEach((members, label) => {
    const shuffled = shuffleInPlace(Int32Array.from(members), rng);
    for (let k = 0; k < shuffled.length; k++) (k < testPerClass[label] ? test : train).push(shuffled[k]);
  });
  return { train: sortedCopy(Int32Array.from(train)), test: sortedCopy(Int32Array.from(test)) };
}

/** The first k entries of a seeded partial Fisher–Yates shuffle of `pool` (pool is copied). */
function sampleWithoutReplacement(pool: Int32Array, k: number, rng: Rng): Int32Array {
  const values = Int32Array.from(pool);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(values.length - i);
    const tmp = values[i];
    values[i] = values[j];
    values[j] = tmp;
  }
  return values.subarray(0, k);
}

export interface SubsampleOptions {
  /**
   * Labels indexed by the original item index (labels[idx]): the subset then keeps class
   * proportions, each class getting floor or ceil of k * n_c / n by largest remainder.
   */
  stratifyBy?: Int32Array;
}

/**
 * Seeded subset of size k, without replacement, sorted ascending. `source` is either a list
 * of candidate indices or a count n meaning 0..n-1 (e.g. k = 1000 of MNIST's 60000).
 */
export function subsample(source: Int32Array | number, k: number, seed: number, options: SubsampleOptions = {}): Int32Array {
  const pool = typeof source === 'number' ? Int32Array.from({ length: source }, (_, i) => i) : source;
  if (!Number.isInteger(k) || k < 0 || k > pool.length) {
    throw new Error(`subsample: k = ${k} must be an integer in 0..${pool.length}`);
  }
  const rng = createRng(seed);
  const { stratifyBy } = options;
  if (!stratifyBy) return sortedCopy(sampleWithoutReplacement(pool, k, rng));

  const poolLabels = Int32Array.from(pool, (idx) => {
    if (idx >= stratifyBy.length) throw new Error(`subsample: index ${idx} has no label (${stratifyBy.length} labels)`);
    return stratifyBy[idx];
  });
  const byClass = indicesByClass(poolLabels).map((positions) => Int32Array.from(positions, (p) => pool[p]));
  const perClass = apportion(
    byClass.map((members) => members.length),
    k,
  );
  const chosen = new Int32Array(k);
  let filled = 0;
  byClass.forEach((members, label) => {
    chosen.set(sampleWithoutReplacement(members, perClass[label], rng), filled);
    filled += perClass[label];
  });
  return chosen.sort();
}

/** Indices (ascending) of the items whose label is one of `classes`. */
export function classSubset(labels: Int32Array, classes: readonly number[]): Int32Array {
  const wanted = new Set(classes);
  const result: number[] = [];
  for (let k = 0; k < labels.length; k++) if (wanted.has(labels[k])) result.push(k);
  return Int32Array.from(result);
}
