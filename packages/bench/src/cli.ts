#!/usr/bin/env node
/**
 * `npm run bench` (after setup): runs the benchmark cases on this machine's WebGPU adapter, next to
 * TensorFlow.js's WebGPU backend on the same adapter, and prints a Markdown table.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { init, runtime } from '@transfuse/core';
import { allCases } from './cases.js';
import { formatModelTable, modelCases } from './models.js';
import { loadTfjs, type TfjsPeer } from './peer_tfjs.js';
import { formatTable, parseCliArgs, targetLines, USAGE } from './report.js';
import { runCases } from './run.js';
import { isOk, type CaseResult } from './types.js';

async function main(): Promise<void> {
  const opts = parseCliArgs(process.argv.slice(2));
  if (opts.help) {
    console.log(USAGE);
    return;
  }
  if (opts.models) return runModels(opts.only, opts.timeMs);
  const only = opts.only?.toLowerCase();
  const cases = allCases(opts.variant).filter((c) => c.kind === 'ceiling' || !only || c.name.toLowerCase().includes(only));
  if (!cases.some((c) => c.kind !== 'ceiling')) throw new Error(`--only '${opts.only}' matches no case; cases:\n  ${allCases().map((c) => c.name).join('\n  ')}`);

  await init();
  const rt = runtime();
  const info = rt.acquired.adapter.info;
  const cpu = cpus();
  const machine = `${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}`;
  const adapter = `${rt.acquired.backend}: ${info.description || info.device || info.vendor}`;
  const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
  const loadBefore = load();
  console.log(`machine: ${machine}, load average ${loadBefore}\nTransfuse adapter: ${adapter}\nnode ${process.version}, --time ${opts.timeMs} ms per side, matmul variant ${opts.variant}`);

  let peer: TfjsPeer | null = null;
  let peerNote = 'skipped (--no-peer)';
  if (opts.peer) {
    const p = await loadTfjs(rt.acquired);
    if ('error' in p) peerNote = `not run: ${p.error}`;
    else {
      peer = p;
      peerNote = p.label;
    }
  }
  console.log(`peer: ${peerNote}\n`);

  const started = performance.now();
  const results = await runCases(cases, {
    timeMs: opts.timeMs,
    peer,
    onResult: (r: CaseResult) => {
      const show = (s: CaseResult['transfuse'] | null) => (!s ? '—' : isOk(s) ? `${s.throughput.toFixed(2)} ${r.unit}` : `error: ${s.error}`);
      console.log(`  ${r.name}: transfuse ${show(r.transfuse)}, tfjs ${show(r.tfjs)}`);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(`\n${formatTable(results)}\n`);
  for (const l of targetLines(results)) console.log(l);
  const loadAfter = load();
  console.log(`\n${results.length} cases in ${seconds.toFixed(0)} s; load average before ${loadBefore}, after ${loadAfter} (other processes on the machine skew both sides)`);
  if (opts.json) {
    const doc = { machine, adapter, peer: peerNote, node: process.version, timeMs: opts.timeMs, variant: opts.variant, date: new Date().toISOString(), loadBefore, loadAfter, results };
    writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`results written to ${opts.json}`);
  }
}

main().then(
  // Dawn keeps the event loop alive: exit explicitly.
  () => process.exit(0),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);

/** `--models`: U-Net and flow steps timed here, beside PyTorch's times from TORCH_BASELINE.md. */
async function runModels(only: string | null, timeMs: number): Promise<void> {
  const cases = modelCases().filter((c) => !only || c.name.toLowerCase().includes(only.toLowerCase()));
  await init();
  console.log(`adapter: ${runtime().acquired.backend}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const results = await runCases(cases, {
    timeMs,
    peer: null,
    onResult: (r) => console.log(`  ${r.name}: ${isOk(r.transfuse) ? `${r.transfuse.medianMs.toFixed(0)} ms` : r.transfuse.error}`),
  });
  console.log(`\n${formatModelTable(cases, results)}`);
}
