/** @transfuse/models: diffusion, flows, transfer procedures, data loaders, metrics, experiments. */
export * from './data/index.js';
export * from './metrics/index.js';
export * from './diffusion/index.js';
export * from './flows/index.js';
export * from './transfer/diffusion.js';
export * from './transfer/multisource.js';
export * from './transfer/flows.js';
export * from './experiments/index.js';
export * from './experiments/results.js';
export * from './io/files.js';
export * from './io/png.js';
export * from './io/plot.js';
