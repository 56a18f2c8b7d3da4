/** Command-line options, the results table and the target checks (pure functions, tested without a GPU). */
import type { MatmulVariant } from '@transfuse/core';
import { isOk, type CaseResult, type SideResult, type Unit } from './types.js';

export interface CliOptions {
  /** Run only cases whose name contains this (case-insensitive); ceilings always run. */
  only: string | null;
  json: string | null;
  /** Time budget per implementation per case, in milliseconds (at least 3 samples are taken anyway). */
  timeMs: number;
  /** 'auto': tfjs-webgpu for the kernel cases, PyTorch for the model cases. */
  peer: Peer;
  /** Matmul kernel variant for the matmul cases ('auto' lets Transfuse choose). */
  variant: MatmulVariant | 'auto';
  help: boolean;
  /** Run the model-level cases (U-Net, flows) instead of the kernel cases. */
  models: boolean;
  /** Measure kernel variants before timing (true), take the fixed rules (false), or follow TRANSFUSE_TUNE (null). */
  tune: boolean | null;
}

export type Peer = 'auto' | 'tfjs' | 'torch' | 'none';
const PEERS: readonly Peer[] = ['auto', 'tfjs', 'torch', 'none'];

const VARIANTS: readonly (MatmulVariant | 'auto')[] = ['auto', 'generic', 'vec4', 'tiled'];

export const USAGE = `Usage: node packages/bench/dist/cli.js [--models] [--only <substring>] [--time <ms>] [--json <file>] [--peer <p>] [--variant <v>]
  --only <s>     run only the cases whose name contains s (the ceilings always run)
  --time <ms>    time budget per implementation per case (default 1000; at least 3 samples)
  --json <f>     also write the results as JSON to f
  --peer <p>     what runs the same cases in alternating rounds: auto (default: tfjs-webgpu for
                 kernels, PyTorch CPU for --models), tfjs, torch (--models only) or none
  --no-peer      the same as --peer none
  --variant <v>  matmul kernel for the matmul cases: auto (default), generic, vec4 or tiled
  --models       model-level cases (U-Net training/sampling, coupling flows)
  --tune on|off  measure kernel variants on this adapter after each case's first step (cached in
                 TRANSFUSE_TUNE_CACHE, default ~/.cache/transfuse/tune.json), or use the fixed
                 rules; default: TRANSFUSE_TUNE (1 = on), else off
Adapter: TRANSFUSE_BACKEND=vulkan|lavapipe|opengl (default: a GPU driver, then lavapipe, then OpenGL).`;

export function parseCliArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { only: null, json: null, timeMs: 1000, peer: 'auto', variant: 'auto', help: false, models: false, tune: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    if (arg === '--only') o.only = value();
    else if (arg === '--json') o.json = value();
    else if (arg === '--time') {
      const v = value();
      o.timeMs = Number(v);
      if (!Number.isFinite(o.timeMs) || o.timeMs <= 0) throw new Error(`--time wants a positive number of milliseconds, got '${v}'`);
    } else if (arg === '--variant') {
      const v = value();
      const known = VARIANTS.find((x) => x === v);
      if (!known) throw new Error(`--variant wants one of ${VARIANTS.join(', ')}, got '${v}'`);
      o.variant = known;
    } else if (arg === '--peer') {
      const v = value();
      const known = PEERS.find((x) => x === v);
      if (!known) throw new Error(`--peer wants one of ${PEERS.join(', ')}, got '${v}'`);
      o.peer = known;
    } else if (arg === '--no-peer') o.peer = 'none';
    else if (arg === '--tune') {
      const v = value();
      if (v !== 'on' && v !== 'off') throw new Error(`--tune wants on or off, got '${v}'`);
      o.tune = v === 'on';
    }
    else if (arg === '--models') o.models = true;
    else if (arg === '--help' || arg === '-h') o.help = true;
    else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  if (o.peer === 'torch' && !o.models) throw new Error(`--peer torch runs the model cases only; add --models`);
  if (o.peer === 'tfjs' && o.models) throw new Error(`--peer tfjs runs the kernel cases only; the model cases compare with --peer torch`);
  return o;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Throughput in the unit's billions per second for `work` per step at `ms` per step. */
export function throughputOf(work: number, ms: number): number {
  return work / (ms * 1e6);
}

/** The best ceiling measured per unit. */
export function ceilings(results: readonly CaseResult[]): Partial<Record<Unit, number>> {
  const out: Partial<Record<Unit, number>> = {};
  for (const r of results) {
    if (r.kind === 'ceiling' && isOk(r.transfuse)) out[r.unit] = Math.max(out[r.unit] ?? 0, r.transfuse.throughput);
  }
  return out;
}

const num = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const cell = (r: SideResult | { error: string } | null, width = 0): string => {
  if (!r) return '—';
  if (!isOk(r)) return `error: ${r.error.split('\n')[0].slice(0, Math.max(width, 60))}`;
  return `${num(r.throughput)} (${r.medianMs.toFixed(r.medianMs < 10 ? 2 : 1)} ms)`;
};

/** A Markdown table: case, unit, Transfuse, tfjs-webgpu, ratio, Transfuse's % of the measured ceiling. */
export function formatTable(results: readonly CaseResult[]): string {
  const ceil = ceilings(results);
  const rows = results.map((r) => {
    const ratio = isOk(r.transfuse) && isOk(r.tfjs) ? `${(r.transfuse.throughput / r.tfjs.throughput).toFixed(2)}x` : '—';
    const c = ceil[r.unit];
    const pct = isOk(r.transfuse) && c && r.kind !== 'ceiling' ? `${((100 * r.transfuse.throughput) / c).toFixed(1)}%` : '—';
    return [r.name, r.unit, cell(r.transfuse), cell(r.tfjs), ratio, pct];
  });
  const head = ['case', 'unit', 'Transfuse (median)', 'tfjs-webgpu (median)', 'ratio', '% of ceiling'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** One line per target: every matmul/conv case at least 2x the peer, matmul 1024 at least 20x naive. */
export function targetLines(results: readonly CaseResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    if (r.target !== 'compute') continue;
    if (isOk(r.transfuse) && isOk(r.tfjs)) {
      const ratio = r.transfuse.throughput / r.tfjs.throughput;
      lines.push(`${ratio >= 2 ? 'MET    ' : 'NOT MET'} ${r.name}: ${ratio.toFixed(2)}x tfjs-webgpu (target >= 2x)`);
    } else {
      lines.push(`UNKNOWN ${r.name}: no pair of results to compare`);
    }
  }
  const fast = results.find((r) => r.name === 'matmul 1024');
  const naive = results.find((r) => r.kind === 'baseline' && r.name.startsWith('naive matmul 1024'));
  if (fast && naive && isOk(fast.transfuse) && isOk(naive.transfuse)) {
    const ratio = fast.transfuse.throughput / naive.transfuse.throughput;
    lines.push(`${ratio >= 20 ? 'MET    ' : 'NOT MET'} matmul 1024: ${ratio.toFixed(1)}x the naive kernel (target >= 20x)`);
  }
  return lines;
}
