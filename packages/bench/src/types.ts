/** Shared shapes of benchmark cases and their results. */
import type * as TF from '@tensorflow/tfjs-core';

export type Tf = typeof TF;
export type Unit = 'GFLOP/s' | 'GB/s';

/** One implementation of a case: inputs are allocated when it is made, `step` records the work once. */
export interface Side {
  /** Records (or submits) one iteration; the runner then waits for the GPU. */
  step(): void;
  dispose(): void;
}

export interface BenchCase {
  name: string;
  unit: Unit;
  /** FLOPs, or bytes read plus written, per step. */
  work: number;
  /**
   * 'case': compared with the peer. 'ceiling': measured bound that the '% of ceiling' column
   * divides by (per unit). 'baseline': a deliberately naive kernel, reported for ratios.
   */
  kind: 'case' | 'ceiling' | 'baseline';
  /** Matmul and conv cases carry the "at least 2x the peer" target. */
  target?: 'compute';
  transfuse: () => Side;
  tfjs?: (tf: Tf) => Side;
  /** The same workload's key in torch_peer.py (model cases). */
  torch?: string;
}

export interface SideResult {
  /** Median milliseconds per step. */
  medianMs: number;
  samples: number;
  /** GFLOP/s or GB/s at the median. */
  throughput: number;
  /** Median CPU milliseconds per step: the PyTorch process's own, or this process's (all threads, the software driver's included). */
  cpuMs?: number;
}

export interface CaseResult {
  name: string;
  unit: Unit;
  kind: BenchCase['kind'];
  target?: 'compute';
  work: number;
  transfuse: SideResult | { error: string };
  tfjs: SideResult | { error: string } | null;
  torch?: SideResult | { error: string } | null;
}

export const isOk = (r: SideResult | { error: string } | null | undefined): r is SideResult => !!r && 'throughput' in r;
