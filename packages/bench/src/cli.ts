#!/usr/bin/env node
/**
 * `npm run bench` (after setup): runs the benchmark cases on this machine's WebGPU adapter, next to
 * TensorFlow.js's WebGPU backend on the same adapter, and prints a Markdown table.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { init, runtime, setTuneStore, setTuning, tunePending, tuningEnabled } from '@transfuse/core';
import { defaultTuneFile, fileTuneStore } from '@transfuse/core/node';
import { allCases } from './cases.js';
import { formatModelTable, modelCases } from './models.js';
import { loadTfjs, type TfjsPeer } from './peer_tfjs.js';
import { loadTorch, type TorchPeer } from './peer_torch.js';
import { formatTable, parseCliArgs, targetLines, USAGE, type CliOptions } from './report.js';
import { runCases } from './run.js';
import { isOk, type CaseResult } from './types.js';

async function main(): Promise<void> {
  const opts = parseCliArgs(process.argv.slice(2));
  if (opts.help) {
    console.log(USAGE);
    return;
  }
  if (opts.models) return runModels(opts);
  const only = opts.only?.toLowerCase();
  const cases = allCases(opts.variant).filter((c) => c.kind === 'ceiling' || !only || c.name.toLowerCase().includes(only));
  if (!cases.some((c) => c.kind !== 'ceiling')) throw new Error(`--only '${opts.only}' matches no case; cases:\n  ${allCases().map((c) => c.name).join('\n  ')}`);

  await init();
  const rt = runtime();
  const { machine, adapter } = describeMachine();
  const loadBefore = load();
  const afterFirstStep = tuning(opts);
  console.log(`machine: ${machine}, load average ${loadBefore}\nTransfuse adapter: ${adapter}\nnode ${process.version}, --time ${opts.timeMs} ms per side, matmul variant ${opts.variant}, ${tuneNote()}`);

  let peer: TfjsPeer | null = null;
  let peerNote = 'skipped (--peer none)';
  if (opts.peer !== 'none') {
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
    afterFirstStep,
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

/** Applies --tune and returns the hook that measures queued variants after a first step, or undefined. */
function tuning(opts: CliOptions): (() => Promise<void>) | undefined {
  if (opts.tune !== null) setTuning(opts.tune);
  if (!tuningEnabled()) return undefined;
  setTuneStore(fileTuneStore());
  return async () => {
    for (const r of await tunePending()) {
      const [, family, bucket] = r.key.split('|');
      const times = Object.entries(r.ms).map(([v, ms]) => `${v} ${ms.toFixed(1)}`).join(', ');
      console.log(`    tuned ${family} ${bucket}: ${r.variant} (ms: ${times})`);
    }
  };
}

const tuneNote = () => (tuningEnabled() ? `tuning on, cache ${defaultTuneFile()}` : 'tuning off (fixed rules and cached choices)');

const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

function describeMachine(): { machine: string; adapter: string } {
  const rt = runtime();
  const info = rt.acquired.adapter.info;
  const cpu = cpus();
  return { machine: `${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}`, adapter: `${rt.acquired.backend}: ${info.description || info.device || info.vendor}` };
}

/** `--models`: U-Net and flow steps, alternating with the same workloads in PyTorch when it is installed. */
async function runModels(opts: CliOptions): Promise<void> {
  const only = opts.only?.toLowerCase();
  const cases = modelCases().filter((c) => !only || c.name.toLowerCase().includes(only));
  if (cases.length === 0) throw new Error(`--only '${opts.only}' matches no model case; cases:\n  ${modelCases().map((c) => c.name).join('\n  ')}`);
  await init();
  const { machine, adapter } = describeMachine();
  const loadBefore = load();
  const afterFirstStep = tuning(opts);
  let torch: TorchPeer | null = null;
  let peerNote = 'skipped (--peer none)';
  if (opts.peer !== 'none') {
    const p = await loadTorch();
    if ('error' in p) peerNote = `not run: ${p.error}; Transfuse runs alone`;
    else {
      torch = p;
      peerNote = p.label;
    }
  }
  console.log(`machine: ${machine}, load average ${loadBefore}\nTransfuse adapter: ${adapter}\nnode ${process.version}, --time ${opts.timeMs} ms per side, ${tuneNote()}\npeer: ${peerNote}\n`);
  const started = performance.now();
  try {
    const results = await runCases(cases, {
      timeMs: opts.timeMs,
      peer: null,
      torch,
      afterFirstStep,
      onResult: (r) => {
        const show = (s: CaseResult['transfuse'] | null | undefined) => (!s ? '—' : isOk(s) ? `${s.medianMs.toFixed(1)} ms` : `error: ${s.error}`);
        console.log(`  ${r.name}: transfuse ${show(r.transfuse)}, torch ${show(r.torch)}`);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    console.log(`\n${formatModelTable(results)}\n\n${results.length} cases in ${seconds.toFixed(0)} s; load average before ${loadBefore}, after ${load()}`);
    if (opts.json) {
      const doc = { machine, adapter, peer: peerNote, node: process.version, timeMs: opts.timeMs, date: new Date().toISOString(), loadBefore, loadAfter: load(), results };
      writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
      console.log(`results written to ${opts.json}`);
    }
  } finally {
    torch?.close();
  }
}
