// The GPU* types a consumer sees come with the package; @webgpu/types needs the DOM library.
/// <reference lib="dom" preserve="true" />
/// <reference types="@webgpu/types" preserve="true" />
export * from './registry.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './matmul.js';
export * from './random.js';
export * from './conv.js';
export * from './optim.js';
export * from './rows.js';
export * from './norm.js';
export * from './conv_choice.js';
export * from './matmul_choice.js';
export * from './pool.js';
export * from './softmax.js';
export * from './softmax_choice.js';
