export * from './schedule.js';
export * from './sampler.js';
