export * from './registry.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './matmul.js';
export * from './random.js';
export * from './conv.js';
export * from './optim.js';
export * from './norm.js';
