/** The store epilogue shared by the register-blocked kernels (matmul, conv, conv weight gradient). */

/**
 * WGSL that stores a block of accumulators through one loop: `store(acc, i)` is the call that
 * finishes accumulator `i` (bounds checks, bias, activation live in the called WGSL function).
 * A loop compiles the epilogue once instead of once per accumulator: llvmpipe's compile time
 * grows with the inlined copies.
 */
export function storeBlock(type: string, accs: readonly string[], store: (acc: string, i: string) => string): string {
  return `let accs = array<${type}, ${accs.length}>(${accs.join(', ')});
  for (var i = 0u; i < ${accs.length}u; i++) {
    ${store('accs[i]', 'i')};
  }`;
}
