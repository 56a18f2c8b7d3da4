// Browser-safe data helpers; the file loaders (MNIST IDX, USPS, digits folders, PNG folders,
// CSV/TSV, .npy, loadImageSource) are in ../node.ts.
export type { DigitImages, Split } from './mnist.js';
export { apportion, classSubset, stratifiedSplit, subsample, testCount } from './split.js';
export { epochBatches, gatherRows } from './batches.js';
export { batches, type ImageSet } from './image-set.js';
export type { IndexSplit, SubsampleOptions } from './split.js';
export { padImages, resizeImages, toSigned, toUnit } from './preprocess.js';
export type { ResizeMode } from './preprocess.js';
export { createRng, permutation, shuffleInPlace } from './prng.js';
export type { Rng } from './prng.js';
