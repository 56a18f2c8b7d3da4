/**
 * Small seeded pseudo-random generator for reproducible splits, subsets and projections.
 *
 * The state is one 32-bit word advanced by a Weyl increment and finalised with an
 * xorshift-multiply mix (the mulberry32 construction). It is not cryptographic; it only has
 * to be fast, deterministic across platforms (pure 32-bit integer arithmetic) and well mixed.
 */
export interface Rng {
  /** Uniform float in [0, 1) with 32 random bits. */
  next(): number;
  /** Uniform integer in [0, n), n <= 2^32. */
  int(n: number): number;
  /** Standard normal sample (Box–Muller). */
  normal(): number;
  /** The whole generator state: createRng(rng.state()) continues the same stream (checkpoints). */
  state(): number;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let z = Math.imul(state ^ (state >>> 15), state | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  };
  const next = (): number => nextUint32() / 4294967296;
  return {
    next,
    // Bias of floor(u * n) is at most n / 2^32: negligible for dataset-sized n.
    int: (n: number) => Math.floor(next() * n),
    normal: () => {
      // 1 - u lies in (0, 1], so the logarithm is finite.
      const radius = Math.sqrt(-2 * Math.log(1 - next()));
      return radius * Math.cos(2 * Math.PI * next());
    },
    state: () => state >>> 0,
  };
}

/** Fisher–Yates shuffle in place, driven by `rng`. */
export function shuffleInPlace(values: Int32Array, rng: Rng): Int32Array {
  for (let i = values.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = values[i];
    values[i] = values[j];
    values[j] = tmp;
  }
  return values;
}

/** A seeded random permutation of 0..n-1. */
export function permutation(n: number, seed: number): Int32Array {
  const values = new Int32Array(n);
  for (let i = 0; i < n; i++) values[i] = i;
  return shuffleInPlace(values, createRng(seed));
}
