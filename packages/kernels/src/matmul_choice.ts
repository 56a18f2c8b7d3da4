/**
 * Which register block the vec4 matmul uses for a product: a pure function of the shape, the
 * adapter kind and what the tuner measured (or the user forced). The variant (generic / vec4 /
 * tiled) itself is chosen by alignment and adapter kind.
 */
import { MATMUL_VEC4, type MatmulGeometry } from './matmul.js';

export const geometryName = (g: MatmulGeometry) => `b${g.block[0]}x${g.block[1]}_wg${g.workgroup[0]}x${g.workgroup[1]}`;

/**
 * Blocks the rule picks on software adapters, largest first. There every storage load inside the
 * K loop is a masked, bounds-checked scalar load per lane (about 15 instructions an element on
 * llvmpipe), while a multiply-add is one vector instruction for 8 lanes, so a larger block, which
 * loads TM + TN elements for TM·TN products, wins once the product has enough blocks to fill the
 * cores; its accumulators spill, which costs far less than the loads (BENCHMARKS.md, "Notes").
 */
export const MATMUL_VEC4_LADDER: readonly MatmulGeometry[] = [
  { block: [16, 32], workgroup: [8, 4] },
  { block: [16, 16], workgroup: [8, 4] },
  MATMUL_VEC4,
];
/** Fewest invocations a ladder block must give: two workgroups, one per core of a 2-core machine. */
const MIN_INVOCATIONS = 64;

/** The ladder, then smaller blocks (more invocations for small products) and a wider workgroup. */
export const MATMUL_VEC4_CANDIDATES: readonly MatmulGeometry[] = [
  ...MATMUL_VEC4_LADDER,
  { block: [8, 8], workgroup: [8, 8] },
  { block: [4, 16], workgroup: [8, 8] },
  { block: [8, 16], workgroup: [8, 8] },
];

const pow2Bucket = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Transposes exactly, sizes rounded up to powers of 2. */
export function matmulBucket(M: number, N: number, K: number, transA: boolean, transB: boolean): string {
  return `${transA ? 't' : 'n'}${transB ? 't' : 'n'}_m${pow2Bucket(M)}_n${pow2Bucket(N)}_k${pow2Bucket(K)}`;
}

/**
 * The block for a batch of M x N products: the one forced or measured (`chosen`), else on a
 * software adapter the largest ladder block that still gives MIN_INVOCATIONS invocations, else
 * the fixed block.
 */
export function matmulVec4GeometryFor(M: number, N: number, batch: number, software: boolean, chosen?: string): MatmulGeometry {
  const named = MATMUL_VEC4_CANDIDATES.find((g) => geometryName(g) === chosen);
  if (named) return named;
  if (!software) return MATMUL_VEC4;
  const invocations = (g: MatmulGeometry) => Math.ceil(M / g.block[0]) * Math.ceil(N / g.block[1]) * batch;
  return MATMUL_VEC4_LADDER.find((g) => invocations(g) >= MIN_INVOCATIONS) ?? MATMUL_VEC4;
}
