export * from './creation.js';
export * from './elementwise.js';
export * from './layout.js';
export * from './sum.js';
export * from './reduce.js';
export * from './matmul.js';
export * from './conv.js';
export * from './norm.js';
