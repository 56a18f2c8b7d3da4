/**
 * @transfuse/models: diffusion, flows, transfer procedures, metrics, image codecs; browser-safe.
 * Data-file loaders, experiments and PNG file writing are in @transfuse/models/node.
 */
export * from './data/index.js';
export * from './metrics/index.js';
export * from './diffusion/index.js';
export * from './flows/index.js';
export * from './transfer/diffusion.js';
export * from './transfer/multisource.js';
export * from './transfer/flows.js';
export * from './io/png.js';
export * from './io/plot.js';
