#!/usr/bin/env node
/**
 * `node packages/bench/dist/ab.js --only <case> --a <forced> [--b <forced>] [--pairs <n>]`: one
 * model case, its steps alternating between two sets of forced kernel variants (each
 * "family=variant,..." as in TRANSFUSE_TUNE_FORCE; empty = the fixed rules), in one process on
 * one model, so that machine load falls on both alike. Prints both medians and B's speedup.
 * `groupnorm-silu=unfused` in a set runs GroupNorm → SiLU as two ops instead of the fused kernel.
 */
import { forceVariant, GroupNorm, init, runtime, silu, type Tensor } from '@transfuse/core';
import { median } from './report.js';
import { modelCases } from './models.js';

const FAMILIES = ['matmul', 'conv', 'conv-input-grad', 'conv-wgrad'];

const fusedGroupNorm = GroupNorm.prototype.forward;
/** GroupNorm's forward with a SiLU epilogue taken out of the kernel: the unfused composition. */
function unfusedGroupNorm(this: GroupNorm, x: Tensor, activation: 'none' | 'silu' = 'none'): Tensor {
  const y = fusedGroupNorm.call(this, x, 'none');
  return activation === 'silu' ? silu(y) : y;
}

function apply(spec: string): void {
  for (const f of FAMILIES) forceVariant(f, null);
  GroupNorm.prototype.forward = fusedGroupNorm;
  for (const part of spec.split(',').filter(Boolean)) {
    const [family, variant] = part.split('=');
    if (family === 'groupnorm-silu' && (variant === 'fused' || variant === 'unfused')) {
      GroupNorm.prototype.forward = variant === 'fused' ? fusedGroupNorm : unfusedGroupNorm;
      continue;
    }
    if (!FAMILIES.includes(family) || !variant) throw new Error(`wants family=variant pairs with a family of ${FAMILIES.join(', ')}, or groupnorm-silu=fused|unfused, got '${part}'`);
    forceVariant(family, variant);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string, dflt?: string) => {
    const i = argv.indexOf(name);
    const v = i >= 0 ? argv[i + 1] : dflt;
    if (v === undefined) throw new Error(`${name} is required`);
    return v;
  };
  const only = arg('--only').toLowerCase();
  const specs = { A: arg('--a'), B: arg('--b', '') };
  const pairs = Number(arg('--pairs', '5'));
  const c = modelCases().find((m) => m.name.toLowerCase().includes(only));
  if (!c) throw new Error(`--only '${only}' matches no model case`);
  await init();
  const rt = runtime();
  const side = c.transfuse();
  const times: Record<'A' | 'B', number[]> = { A: [], B: [] };
  const step = async (k: 'A' | 'B') => {
    apply(specs[k]);
    const t0 = performance.now();
    side.step();
    await rt.sync();
    return performance.now() - t0;
  };
  await step('A'); // compile both sets first
  await step('B');
  for (let i = 0; i < pairs; i++) for (const k of ['A', 'B'] as const) times[k].push(await step(k));
  side.dispose();
  const [a, b] = [median(times.A), median(times.B)];
  console.log(`${c.name}: A (${specs.A || 'rules'}) ${a.toFixed(0)} ms, B (${specs.B || 'rules'}) ${b.toFixed(0)} ms, A/B ${(a / b).toFixed(2)}x (medians of ${pairs} alternating pairs)`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);
