/**
 * @transfuse/models/node: the Node-only parts: loading MNIST/USPS files, the experiments and
 * their result files, and writing PNG sample sheets.
 */
export { DataFileError, findDataFile, loadIdxImages, loadIdxLabels, loadMnist, readMaybeGzipped } from './data/mnist.js';
export { USPS_SIDE, loadEslDigits, loadLibsvm, loadUsps, loadUspsLibsvm } from './data/usps.js';
export type { LibsvmData, LibsvmOptions } from './data/usps.js';
export * from './data/digits.js';
export { loadImageSource, inferPixelRange } from './data/image-source.js';
export type { ImageFormat, ImageSourceOptions, LoadedImages } from './data/image-source.js';
export { decodePng } from './data/png-decode.js';
export { loadNpy } from './data/npy.js';
export type { NpyArray } from './data/npy.js';
export { loadDelimited } from './data/delimited.js';
export type { GreyImage } from './data/png-decode.js';
export * from './experiments/index.js';
export * from './experiments/results.js';
export * from './io/files.js';
export { savePngGrid } from './io/png_file.js';
