/**
 * Which register block the vec4 matmul uses for a product: a pure function of the shape and of
 * what the tuner measured (or the user forced); `undefined` means "no measurement: the fixed
 * block". The variant (generic / vec4 / tiled) itself is chosen by alignment and adapter kind.
 */
import { MATMUL_VEC4, type MatmulGeometry } from './matmul.js';

export const geometryName = (g: MatmulGeometry) => `b${g.block[0]}x${g.block[1]}_wg${g.workgroup[0]}x${g.workgroup[1]}`;

/** The fixed block first, then smaller blocks (more invocations for small products) and a wider one. */
export const MATMUL_VEC4_CANDIDATES: readonly MatmulGeometry[] = [
  MATMUL_VEC4,
  { block: [8, 8], workgroup: [8, 8] },
  { block: [4, 16], workgroup: [8, 8] },
  { block: [8, 16], workgroup: [8, 8] },
];

const pow2Bucket = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Transposes exactly, sizes rounded up to powers of 2. */
export function matmulBucket(M: number, N: number, K: number, transA: boolean, transB: boolean): string {
  return `${transA ? 't' : 'n'}${transB ? 't' : 'n'}_m${pow2Bucket(M)}_n${pow2Bucket(N)}_k${pow2Bucket(K)}`;
}

export function matmulVec4GeometryFor(chosen?: string): MatmulGeometry {
  return MATMUL_VEC4_CANDIDATES.find((g) => geometryName(g) === chosen) ?? MATMUL_VEC4;
}
