/**
 * Transfer procedures for coupling flows (Tian & Shen's shared-embedding condition).
 *
 * Conditional: the source flow's condition embedding h(z) is shared; the target flow holds a copy,
 * frozen, and either fine-tunes everything else from the source weights ('finetune') or
 * re-initialises everything but h ('fresh-head'). With a one-hot h there is nothing to freeze.
 * 'finetune' re-initialises the ActNorm layers on the first target batch (`Flow.resetActNorm`):
 * they are data statistics, not learned structure.
 *
 * Unconditional (X = g(U)): the flow's transforms are g⁻¹ (data → latent) and its learned base is
 * the law of U. On the target the base is copied and frozen and only g_t is fitted, initialised
 * from g_s ('finetune', ActNorm re-initialised on the target as above) or re-initialised ('fresh').
 *
 * Baselines train from scratch on the target: the same architecture (`baselineFlow`), or for the
 * unconditional case optionally a standard-normal base with the base flow's couplings moved into
 * the main stack (`standardBaseConfig`).
 */
import { Flow, type FlowConfig } from '../flows/flow.js';

export type ConditionalFlowTransfer = 'finetune' | 'fresh-head';
export type UnconditionalFlowTransfer = 'finetune' | 'fresh';

/**
 * A new flow holding a copy of `source`'s weights. It keeps the source's seed: the seed also fixes
 * the random permutations, which are structure, not weights, so a copy under another seed would
 * feed the copied couplings the pixels in another order.
 */
export function cloneFlow(source: Flow): Flow {
  const copy = new Flow(source.config);
  copy.loadStateDict(source.stateDict());
  return copy;
}

/** The target flow for conditional transfer: the source's condition_embedding, copied and frozen. */
export function conditionalFlowTransfer(source: Flow, mode: ConditionalFlowTransfer, seed?: number): Flow {
  if (!source.condition_embedding) throw new Error('conditionalFlowTransfer: the source flow is unconditional (config.condition unset)');
  let target: Flow;
  if (mode === 'finetune') {
    target = cloneFlow(source);
    target.resetActNorm();
  } else if (mode === 'fresh-head') {
    target = new Flow({ ...source.config, seed });
    target.condition_embedding!.loadStateDict(source.condition_embedding.stateDict());
  } else {
    throw new Error(`conditionalFlowTransfer: unknown mode '${mode as string}' (use finetune, fresh-head)`);
  }
  target.condition_embedding!.freeze();
  return target;
}

/** The target flow for unconditional transfer: the source's learned base (law of U), copied and frozen. */
export function unconditionalFlowTransfer(source: Flow, mode: UnconditionalFlowTransfer, seed?: number): Flow {
  if (source.base.numParameters() === 0) throw new Error("unconditionalFlowTransfer: the source flow's base has no parameters; use base 'diagonal' or a base flow");
  let target: Flow;
  if (mode === 'finetune') {
    target = cloneFlow(source);
    target.resetActNorm();
  } else if (mode === 'fresh') {
    target = new Flow({ ...source.config, seed });
    target.base.loadStateDict(source.base.stateDict());
  } else {
    throw new Error(`unconditionalFlowTransfer: unknown mode '${mode as string}' (use finetune, fresh)`);
  }
  target.base.freeze();
  return target;
}

/** The no-transfer baseline: the same architecture, freshly initialised. */
export function baselineFlow(config: FlowConfig, seed?: number): Flow {
  return new Flow({ ...config, seed });
}

/** The config with a standard-normal base; a base flow's couplings join the main stack instead. */
export function standardBaseConfig(config: FlowConfig): FlowConfig {
  const b = config.base;
  return { ...config, base: 'normal', layers: config.layers + (typeof b === 'object' ? b.layers : 0) };
}
