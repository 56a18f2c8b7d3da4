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

/** Seeded minibatch rows of `n` items: a fresh permutation every epoch (batches run across epoch ends). */
export function epochBatches(n: number, batchSize: number, seed: number): () => Int32Array {
  let epoch = 0;
  let order = permutation(n, deriveSeed(seed, epoch));
  let at = 0;
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
