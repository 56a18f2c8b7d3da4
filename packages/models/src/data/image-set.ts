import { epochBatches, gatherRows } from './batches.js';

/** Images in [-1, 1], [n, channels, height, width] row-major, with optional class labels. */
export interface ImageSet {
  images: Float32Array;
  labels: Int32Array | null;
  n: number;
  channels: number;
  height: number;
  width: number;
}

/** Seeded minibatches of images (and labels): a fresh permutation each epoch. */
export function batches(set: ImageSet, batchSize: number, seed: number): () => { x: Float32Array; labels: Int32Array | null; indices: Int32Array } {
  const next = epochBatches(set.n, batchSize, seed);
  return () => {
    const indices = next();
    const x = gatherRows(set.images, set.channels * set.height * set.width, indices);
    return { x, labels: set.labels ? Int32Array.from(indices, (r) => set.labels![r]) : null, indices };
  };
}
