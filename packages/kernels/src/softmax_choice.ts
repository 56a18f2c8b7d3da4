/**
 * Which row mapping the softmax kernels (forward and backward) use for a shape: a pure function of
 * the shape, the adapter kind and what the tuner measured (or the user forced); `undefined` means
 * "no measurement: the fixed rule" (`rowModeRule`, the mapping before tuning existed).
 */
import { rowModeRule, type RowMode } from './rows.js';

/** What the softmax kernels' speed depends on: rows of an [outer, len, inner] view. */
export interface SoftmaxShape {
  rows: number;
  len: number;
  /** Distance between a row's elements (1: contiguous rows). */
  inner: number;
}

const pow2Bucket = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Rows and row length rounded up to powers of 2; contiguous and strided rows apart. */
export function softmaxBucket(s: SoftmaxShape): string {
  return `r${pow2Bucket(s.rows)}_l${pow2Bucket(s.len)}_${s.inner === 1 ? 'c' : 's'}`;
}

/** The mappings the tuner measures, the rule's first; compatibility adapters have only 'thread'. */
export function softmaxCandidates(s: SoftmaxShape, compatibility: boolean): RowMode[] {
  const rule = rowModeRule(s.rows, compatibility);
  if (compatibility) return [rule];
  return [rule, rule === 'thread' ? 'workgroup' : 'thread'];
}

/** The mapping: the measured (or forced) one if it is a candidate, else the fixed rule's. */
export function softmaxRowModeFor(s: SoftmaxShape, compatibility: boolean, chosen?: string): RowMode {
  const candidates = softmaxCandidates(s, compatibility);
  return candidates.find((m) => m === chosen) ?? candidates[0];
}
