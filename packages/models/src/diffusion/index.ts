export * from './schedule.js';
export * from './sampler.js';
export * from './unet.js';
export * from './train.js';
export * from './mlp.js';
