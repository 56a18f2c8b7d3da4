/** Minibatching of row-major datasets: gathering rows, and seeded batches that reshuffle every epoch. */
import { deriveSeed } from '@transfuse/core';
import { permutation } from './prng.js';

/** Gathers the rows `indices` of an n*rowSize array (images, features) into a new array. */
export function gatherRows(values: Float32Array, rowSize: number, indices: Int32Array): Float32Array {
  const out = new Float32Array(indices.length * rowSize);
  for (let r = 0; r < indices.length; r++) {
    if (indices[r] < 0 || (indices[r] + 1) * rowSize > values.length) {
      throw new Error(`gatherRows: index ${indices[r]} is out of range for ${values.length / rowSize} rows`);
    }
    const start = indices[r] * rowSize;
    out.set(values.subarray(start, start + rowSize), r * rowSize);
  }
  return out;
}

/**
 * Seeded minibatch rows of `n` items: a fresh permutation every epoch (batches run across epoch
 * ends). `skip` batches are passed over first, so a resumed run sees the same order as an
 * uninterrupted one.
 */
export function epochBatches(n: number, batchSize: number, seed: number, skip = 0): () => Int32Array {
  if (!(n >= 1)) throw new Error('epochBatches: the data set is empty');
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new Error(`epochBatches: batchSize must be an integer >= 1, got ${batchSize}`);
  const drawn = skip * batchSize;
  let epoch = Math.floor(drawn / n);
  let order = permutation(n, deriveSeed(seed, epoch));
  let at = drawn - epoch * n;
  return () => {
    const rows = new Int32Array(batchSize);
    for (let i = 0; i < batchSize; i++) {
      if (at === n) {
        order = permutation(n, deriveSeed(seed, ++epoch));
        at = 0;
      }
      rows[i] = order[at++];
    }
    return rows;
  };
}
