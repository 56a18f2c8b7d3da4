/**
 * Soak benchmark: a long run of small training steps through the public trainers, reporting every
 * 1,000 steps the live tensors, pool buffers, live bind groups (after a full GC) and the process RSS, which must stay
 * flat after warm-up (a leak shows as a trend). Not a timed test: run it by hand,
 *
 *   node packages/bench/dist/soak.js [--steps 10000] [--every 1000]
 *
 * and copy the table into BENCHMARKS.md.
 */
import { init, memory, runtime, shutdown } from '@transfuse/core';
import { Flow, trainFlow } from '@transfuse/models';

interface Row {
  step: number;
  tensors: number;
  buffers: number;
  bindGroups: number;
  rssMiB: number;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`soak: --${name} must be a positive integer, got '${process.argv[i + 1]}'`);
  return v;
}

async function main(): Promise<void> {
  const steps = arg('steps', 10_000);
  const every = arg('every', 1000);
  await init();
  const rt = runtime();
  // A small image-like flow on random data: the loop (batches, autograd, Adam, logging) is what soaks.
  const dim = 64;
  const n = 512;
  const x = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i * 0.37) * 0.5);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const flow = new Flow({ dim, coupling: 'affine', layers: 4, hidden: [64], permutation: 'random', actnorm: true, condition: { numClasses: 10, embedding: 8 }, seed: 1 });
  const rows: Row[] = [];
  const sample = (step: number) =>
    rows.push({
      step,
      tensors: memory().tensors,
      buffers: memory().liveBuffers,
      bindGroups: rt.counters.bindGroups - rt.counters.bindGroupsCollected,
      rssMiB: process.memoryUsage().rss / 2 ** 20,
    });
  const started = performance.now();
  // Bind groups are freed only when their JS objects are collected: force a collection, then read
  // the counters a task later, once the finalizers have run.
  const pending: Promise<void>[] = [];
  const gcThenWait = (ms: number) => new Promise<void>((resolve) => {
    rt.acquired.collectGarbage?.();
    setTimeout(resolve, ms);
  });
  const onLog = (step: number) => {
    // Two rounds: the first collection queues the finalizers, the second sweeps what they released.
    pending.push(gcThenWait(100).then(() => gcThenWait(100)).then(() => void sample(step)));
  };
  await trainFlow(flow, { x, n, dim, labels }, { steps, batchSize: 32, lr: 1e-3, seed: 2, logEvery: every, label: null, onLog });
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  const warm = rows.find((r) => r.step >= 2 * every) ?? rows[0];
  const spread = (key: 'tensors' | 'buffers' | 'bindGroups' | 'rssMiB') => {
    const after = rows.filter((r) => r.step >= warm.step).map((r) => r[key]);
    return (100 * (Math.max(...after) - Math.min(...after))) / Math.max(1e-9, Math.min(...after));
  };
  const lines = [
    `soak: trainFlow, ${steps} steps of a ${flow.numParameters()}-parameter conditional flow (dim ${dim}, batch 32) on ${rt.acquired.backend}, ${seconds.toFixed(0)} s`,
    '',
    '| step | live tensors | pool buffers (live) | live bind groups | RSS (MiB) |',
    '|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.step} | ${r.tensors} | ${r.buffers} | ${r.bindGroups} | ${r.rssMiB.toFixed(0)} |`),
    '',
    `spread from step ${warm.step} on (max - min) / min: tensors ${spread('tensors').toFixed(1)}%, buffers ${spread('buffers').toFixed(1)}%, bind groups ${spread('bindGroups').toFixed(1)}%, RSS ${spread('rssMiB').toFixed(1)}%`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  flow.dispose();
}

main()
  .then(() => {
    shutdown();
    process.exit(0);
  })
  .catch((e: Error) => {
    process.stderr.write(`soak: ${e.message}\n`);
    process.exit(1);
  });
