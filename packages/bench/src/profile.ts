#!/usr/bin/env node
/**
 * `node packages/bench/dist/profile.js [--only <substring>] [--top <k>]`: one step of each model
 * case with GPU timestamps per kernel (`runtime().startProfiling()`), after an untimed warm-up
 * step, printed slowest kernel first. Each dispatch runs in its own pass while profiling, so the
 * total exceeds an unprofiled step; the shares are what to read.
 */
import { init, runtime } from '@transfuse/core';
import { modelCases } from './models.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = arg('--only')?.toLowerCase();
  const top = Number(arg('--top') ?? 15);
  const cases = modelCases().filter((c) => !only || c.name.toLowerCase().includes(only));
  if (cases.length === 0) throw new Error(`--only '${only}' matches no model case; cases:\n  ${modelCases().map((c) => c.name).join('\n  ')}`);
  await init();
  const rt = runtime();
  rt.startProfiling();
  let before = new Map<string, { ms: number; count: number }>();
  for (const c of cases) {
    const side = c.transfuse();
    side.step();
    await rt.sync();
    before = new Map((await rt.profileReport()).map((r) => [r.kernel, r]));
    const t0 = performance.now();
    side.step();
    await rt.sync();
    const wall = performance.now() - t0;
    const rows = (await rt.profileReport())
      .map((r) => ({ kernel: r.kernel, ms: r.ms - (before.get(r.kernel)?.ms ?? 0), count: r.count - (before.get(r.kernel)?.count ?? 0) }))
      .filter((r) => r.count > 0)
      .sort((a, b) => b.ms - a.ms);
    const total = rows.reduce((s, r) => s + r.ms, 0);
    console.log(`\n${c.name}: ${total.toFixed(0)} ms of kernels in ${rows.reduce((s, r) => s + r.count, 0)} dispatches (${wall.toFixed(0)} ms wall, profiled)`);
    console.log('| kernel | ms | share | dispatches |\n|---|---|---|---|');
    for (const r of rows.slice(0, top)) console.log(`| ${r.kernel} | ${r.ms.toFixed(1)} | ${((100 * r.ms) / total).toFixed(1)}% | ${r.count} |`);
    side.dispose();
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);
