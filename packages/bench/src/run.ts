/**
 * Runs cases with tinybench. Per case both implementations are set up and warmed (the first step
 * compiles their shaders, and lets the tuner measure what Transfuse's first step queued), then sampled in alternating rounds, Transfuse then its peer (TF.js or PyTorch), so that both
 * see the same machine load; each round is a tinybench run of a third of the time budget (at
 * least one step). Steps slower than SLOW_STEP_MS are sampled once. Every step awaits the GPU.
 */
import { Bench } from 'tinybench';
import { runtime } from '@transfuse/core';
import type { TfjsPeer } from './peer_tfjs.js';
import type { TorchPeer } from './peer_torch.js';
import { median, throughputOf } from './report.js';
import type { BenchCase, CaseResult, Side, SideResult } from './types.js';

const ROUNDS = 3;
/** A warm-up step slower than this is all work, not compilation: one timed step then suffices. */
const SLOW_STEP_MS = 8000;

interface Contender {
  name: string;
  work: number;
  side: Side | null;
  step: () => Promise<void>;
  slow: boolean;
  samples: number[];
  /** CPU milliseconds per step (the peer's own process, else this one's), sampled alongside. */
  cpu: number[];
  error: string | null;
}

async function prepare(name: string, work: number, make: () => Promise<{ side: Side; wait: () => Promise<number | void> }>, afterFirst?: () => Promise<void>): Promise<Contender> {
  const c: Contender = { name, work, side: null, step: async () => {}, slow: false, samples: [], cpu: [], error: null };
  try {
    const { side, wait } = await make();
    c.side = side;
    c.step = async () => {
      const cpu0 = process.cpuUsage();
      side.step();
      const own = await wait();
      const used = process.cpuUsage(cpu0);
      c.cpu.push(typeof own === 'number' ? own : (used.user + used.system) / 1000);
    };
    await c.step();
    if (afterFirst) {
      await afterFirst();
      await c.step();
    }
    const t0 = performance.now();
    await c.step();
    c.slow = performance.now() - t0 > SLOW_STEP_MS;
    if (!c.slow) await c.step();
  } catch (e) {
    c.error = (e as Error).message;
  }
  return c;
}

async function sampleRound(c: Contender, timeMs: number): Promise<void> {
  if (c.error || (c.slow && c.samples.length > 0)) return;
  try {
    const bench = new Bench({ time: timeMs, iterations: 1, warmup: false, retainSamples: true, throws: true });
    bench.add(c.name, c.step);
    await bench.run();
    const r = bench.tasks[0].result;
    if (r.state !== 'completed' || !r.latency.samples) throw new Error(`tinybench ended in state '${r.state}'`);
    c.samples.push(...r.latency.samples);
  } catch (e) {
    c.error = (e as Error).message;
  }
}

function finish(c: Contender): SideResult | { error: string } {
  c.side?.dispose();
  if (c.error) return { error: c.error };
  const ms = median(c.samples);
  // The warm-up steps' CPU times (compilation) are left out.
  const cpu = c.cpu.slice(-c.samples.length);
  return { medianMs: ms, samples: c.samples.length, throughput: throughputOf(c.work, ms), cpuMs: median(cpu) };
}

export interface RunOptions {
  /** Time budget per implementation per case, in milliseconds. */
  timeMs: number;
  peer: TfjsPeer | null;
  /** PyTorch on the CPU, for cases that name a `torch` workload. */
  torch?: TorchPeer | null;
  /** Called after Transfuse's first step of each case (the tuner measures what that step queued). */
  afterFirstStep?: () => Promise<void>;
  /** Called after each case (progress output). */
  onResult?: (r: CaseResult) => void;
}

export async function runCases(cases: readonly BenchCase[], o: RunOptions): Promise<CaseResult[]> {
  const rt = runtime();
  const results: CaseResult[] = [];
  for (const c of cases) {
    const contenders = [await prepare(`${c.name} [transfuse]`, c.work, async () => ({ side: c.transfuse(), wait: () => rt.sync() }), o.afterFirstStep)];
    const { peer, torch } = o;
    const makeTf = c.tfjs;
    const torchKey = c.torch;
    const tfjsAt = makeTf && peer ? contenders.push(await prepare(`${c.name} [tfjs]`, c.work, async () => ({ side: makeTf(peer.tf), wait: () => peer.sync() }))) - 1 : -1;
    const torchAt = torchKey && torch ? contenders.push(await prepare(`${c.name} [torch]`, c.work, () => torch.side(torchKey))) - 1 : -1;
    for (let round = 0; round < ROUNDS; round++) {
      for (const k of contenders) await sampleRound(k, o.timeMs / ROUNDS);
    }
    const done = contenders.map(finish);
    const r: CaseResult = { name: c.name, unit: c.unit, kind: c.kind, target: c.target, work: c.work, transfuse: done[0], tfjs: done[tfjsAt] ?? null, torch: done[torchAt] ?? null };
    results.push(r);
    o.onResult?.(r);
  }
  return results;
}
