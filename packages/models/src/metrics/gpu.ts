/**
 * The pairwise Euclidean cost matrix on the GPU: ‖a_i - b_j‖² = ‖a_i‖² + ‖b_j‖² - 2 a_i·b_j, one
 * matmul plus two row norms, then square roots in float64 on the CPU. Float32 cancellation is
 * bounded by keeping a and b centred on their joint mean; the exact assignment runs in float64.
 */
import { add, matmulRaw, mean, mul, noGrad, reshape, sub, sum, square, tensor, tidy } from '@transfuse/core';
import { w1FromCost, type W1Options } from './w1.js';

export async function pairwiseEuclideanGpu(a: Float32Array, b: Float32Array, n: number, m: number, dim: number): Promise<Float64Array> {
  if (a.length !== n * dim || b.length !== m * dim) {
    throw new Error(`pairwiseEuclideanGpu: sets of ${a.length} and ${b.length} values are not ${n}x${dim} and ${m}x${dim}`);
  }
  const d2 = noGrad(() =>
    tidy(() => {
      const ta = tensor(a, [n, dim]);
      const tb = tensor(b, [m, dim]);
      const shift = mul(add(mean(ta, 0, true), mean(tb, 0, true)), 0.5);
      const ca = sub(ta, shift);
      const cb = sub(tb, shift);
      const na = reshape(sum(square(ca), 1), [n, 1]);
      const nb = reshape(sum(square(cb), 1), [1, m]);
      return add(add(na, nb), matmulRaw(ca, cb, { transB: true, alpha: -2 }));
    }),
  );
  const sq = await d2.data();
  d2.dispose();
  return Float64Array.from(sq, (v) => Math.sqrt(Math.max(0, v)));
}

/** Exact W1 with the cost matrix computed on the GPU (see w1FromCost for the solver). */
export async function w1Gpu(a: Float32Array, b: Float32Array, n: number, m: number, dim: number, options: W1Options = {}): Promise<number> {
  return w1FromCost(await pairwiseEuclideanGpu(a, b, n, m, dim), n, m, options);
}
