export * from './transforms.js';
export * from './flow.js';
export * from './presets.js';
export * from './train.js';
