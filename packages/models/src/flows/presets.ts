/**
 * Flow presets. `realnvp`, `nice` and `realnvp-cond` are the PyTorch baseline's models exactly
 * (/work/shared/design/TORCH_BASELINE.md): 8 couplings on D = 256 with alternating half masks and
 * Linear(128, 512)-ReLU-Linear(512, 512)-ReLU-Linear(512, ·) conditioners; 3,680,256 / 3,155,200 /
 * 3,721,216 parameters. The `-emb` variant swaps the one-hot for a learned, freezable
 * Embedding(10, 10) (+100 parameters) as the shared h(z). `three-layer` is the theory's model:
 * 3 additive couplings on a learned diagonal Gaussian base. `small` and `small-cond` are compact
 * image flows for the CPU.
 */
import type { FlowConfig } from './flow.js';

export const FLOW_PRESETS = {
  realnvp: { dim: 256, coupling: 'affine', layers: 8, hidden: [512, 512] },
  nice: { dim: 256, coupling: 'additive', layers: 8, hidden: [512, 512], finalScaling: true },
  'realnvp-cond': { dim: 256, coupling: 'affine', layers: 8, hidden: [512, 512], condition: { numClasses: 10, embedding: 'onehot' } },
  'realnvp-cond-emb': { dim: 256, coupling: 'affine', layers: 8, hidden: [512, 512], condition: { numClasses: 10, embedding: 10 } },
  'three-layer': { dim: 256, coupling: 'additive', layers: 3, hidden: [512, 512], base: 'diagonal' },
  small: { dim: 256, coupling: 'affine', layers: 6, hidden: [128], permutation: 'random', actnorm: true },
  'small-cond': { dim: 256, coupling: 'affine', layers: 6, hidden: [128], permutation: 'random', actnorm: true, condition: { numClasses: 10, embedding: 10 } },
} satisfies Record<string, FlowConfig>;

export type FlowPresetName = keyof typeof FLOW_PRESETS;

/** A preset's config with overrides (dim, seed, logitAlpha, ...). */
export function flowPreset(name: string, overrides: Partial<FlowConfig> = {}): FlowConfig {
  const p = (FLOW_PRESETS as Record<string, FlowConfig>)[name];
  if (!p) throw new Error(`unknown flow preset '${name}' (use ${Object.keys(FLOW_PRESETS).join(', ')})`);
  return structuredClone({ ...p, ...overrides });
}
