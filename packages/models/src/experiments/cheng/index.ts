/**
 * Cheng et al. (arXiv 2502.04491) Experiments 1 and 2: multi-source representation learning for
 * conditional diffusion (transfer/multisource.ts) against training from scratch on m target pairs.
 * The choices the paper leaves open, and why, are in EXPERIMENTS.md ("Cheng et al.: choices the paper leaves open").
 */
export * from './sde.js';
export * from './mcmc.js';
export { CHENG_RESTORATION_PRESETS, CHENG_SYNTHETIC_PRESETS, type ChengRestorationPreset, type ChengSyntheticPreset } from './presets.js';
export type { ChengResults } from './run.js';
export * from './synthetic.js';
export * from './restoration.js';
export { cholesky, solveChol } from '../../linalg/cholesky.js';
