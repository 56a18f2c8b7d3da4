/**
 * Which register block the row conv kernels use for a shape: pure functions of the shape and of
 * what the tuner measured (or the user forced), so the rule is testable without a GPU and the op
 * files only ask. A choice is a variant name; `undefined` means "no measurement: use the rule".
 */
import type { ConvBlocking, ConvWeightGradBlocking } from './conv.js';

/** What the row conv kernels' speed depends on (forward conv or input gradient alike). */
export interface ConvRowShape {
  /** Output width (pixels per output row). */
  outW: number;
  /** Output channels per group, and the channels reduced over. */
  outCg: number;
  redC: number;
  kw: number;
}

/** What the row weight-gradient kernel's speed depends on. */
export interface ConvWeightGradRowShape {
  outW: number;
  /** Output channels (of the forward conv) and input channels per group. */
  outCg: number;
  inCg: number;
  kw: number;
}

/**
 * Register blocks of the general kernels (strided, dilated along x, 1x1 and wide convs), fixed:
 * measured on llvmpipe, Vulkan lavapipe and OpenGL alike.
 */
export const CONV_GENERAL_BLOCK: ConvBlocking = { tco: 8, tpx: 4, wg: 64 };
export const CONV_WGRAD_GENERAL_BLOCK: ConvWeightGradBlocking = { tco: 4, tci: 4, wg: 64 };
/** Widest kernel the row kernels are unrolled for; wider ones use the general kernels. */
export const ROW_MAX_KW = 7;

/**
 * Whether the row kernels serve a conv: taps and output pixels 1 apart along x (stride and
 * dilation 1 there). For kw = 1 they reuse nothing and measured no faster, so 1x1 convs share the
 * general kernels' pipelines instead of two more.
 */
export function rowKernelsApply(strideX: number, dilationX: number, kw: number): boolean {
  return strideX === 1 && dilationX === 1 && kw >= 2 && kw <= ROW_MAX_KW;
}

const pow2Bucket = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

export const blockingName = (b: ConvBlocking) => `tco${b.tco}_tpx${b.tpx}_wg${b.wg}`;
export const weightGradBlockingName = (b: ConvWeightGradBlocking) => `tco${b.tco}_tci${b.tci}_wg${b.wg}`;

/** Shape bucket: the width exactly (it decides the block fit), channels rounded up to powers of 2. */
export function convRowBucket(s: ConvRowShape): string {
  return `w${s.outW}_co${pow2Bucket(s.outCg)}_ci${pow2Bucket(s.redC)}_k${s.kw}`;
}

export function convWeightGradRowBucket(s: ConvWeightGradRowShape): string {
  return `w${s.outW}_co${pow2Bucket(s.outCg)}_ci${pow2Bucket(s.inCg)}_k${s.kw}`;
}

/**
 * Pixels per invocation that tile the row with the least waste (pixels computed past the row end
 * and dropped), the larger on a tie: 8 for widths 8, 16, 32; 4 for 4; 7 for 7, 14, 28. A tuner
 * candidate.
 */
export function rowFit(outW: number, max = 8): number {
  let best = Math.min(4, outW);
  for (let t = best; t <= max; t++) {
    const waste = (n: number) => Math.ceil(outW / n) * n - outW;
    if (waste(t) <= waste(best)) best = t;
  }
  return best;
}

/**
 * The fixed rule's pixels per invocation: 8, or 4 for rows of 4 pixels or fewer, where an 8-pixel
 * block drops half its work (measured 1.45x faster per layer at 4x4). Rows of 7, 14 and 28 keep
 * 8: their waste-free 7-pixel blocks measured slower on a whole U-Net step (BENCHMARKS.md).
 */
export function rowBlockPixels(outW: number): number {
  return outW <= 4 ? 4 : 8;
}

/** The blocks the tuner measures for a row conv shape; the rule's choice comes first. */
export function convRowCandidates(s: ConvRowShape): ConvBlocking[] {
  const fit = rowFit(s.outW);
  const out: ConvBlocking[] = [
    { tco: 4, tpx: rowBlockPixels(s.outW), wg: 64 },
    { tco: 4, tpx: fit, wg: 64 },
    { tco: 8, tpx: fit, wg: 64 },
    { tco: 4, tpx: 8, wg: 64 },
    { tco: 8, tpx: 4, wg: 64 },
  ];
  return out.filter((b, i) => out.findIndex((o) => blockingName(o) === blockingName(b)) === i);
}

/** The row conv block: the measured (or forced) one if it is a candidate, else 4 channels by `rowBlockPixels`. */
export function convRowBlockingFor(s: ConvRowShape, chosen?: string): ConvBlocking {
  const candidates = convRowCandidates(s);
  return candidates.find((b) => blockingName(b) === chosen) ?? candidates[0];
}

export function convWeightGradRowCandidates(_s: ConvWeightGradRowShape): ConvWeightGradBlocking[] {
  return [
    { tco: 8, tci: 2, wg: 8 },
    { tco: 4, tci: 2, wg: 8 },
    { tco: 8, tci: 4, wg: 8 },
  ];
}

/** The row weight-gradient block: measured (or forced) if a candidate, else 8 x 2 on 8 invocations. */
export function convWeightGradRowBlockingFor(s: ConvWeightGradRowShape, chosen?: string): ConvWeightGradBlocking {
  const candidates = convWeightGradRowCandidates(s);
  return candidates.find((b) => weightGradBlockingName(b) === chosen) ?? candidates[0];
}
