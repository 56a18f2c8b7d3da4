/** Op tables shared by the forward tests and the gradient checks: GPU op, float64 reference, input domain. */
import * as T from '@transfuse/core';
import type { Tensor } from '@transfuse/core';
import * as ref from './reference.js';

/** `noGradient`: the op's rule lets no gradient flow (zero almost everywhere). */
export type UnaryCase = { f: (t: Tensor) => Tensor; ref: (x: number) => number; lo: number; hi: number; tol?: { rtol: number; atol: number }; noGradient?: true };

export const gelu = (x: number) => 0.5 * x * (1 + ref.erf(x / Math.SQRT2));
// Keyed by kernel row (plus extra variants): a differentiable row without a case does not compile.
export const UNARY_CASES: Record<string, UnaryCase> = {
  neg: { f: T.neg, ref: (x) => -x, lo: -5, hi: 5 },
  exp: { f: T.exp, ref: Math.exp, lo: -10, hi: 10 },
  log: { f: T.log, ref: Math.log, lo: 1e-3, hi: 100 },
  sqrt: { f: T.sqrt, ref: Math.sqrt, lo: 0, hi: 100 },
  rsqrt: { f: T.rsqrt, ref: (x) => 1 / Math.sqrt(x), lo: 1e-2, hi: 100 },
  abs: { f: T.abs, ref: Math.abs, lo: -5, hi: 5 },
  tanh: { f: T.tanh, ref: Math.tanh, lo: -20, hi: 20 },
  sigmoid: { f: T.sigmoid, ref: (x) => 1 / (1 + Math.exp(-x)), lo: -100, hi: 100 },
  relu: { f: T.relu, ref: (x) => Math.max(x, 0), lo: -5, hi: 5 },
  silu: { f: T.silu, ref: (x) => x / (1 + Math.exp(-x)), lo: -100, hi: 100 },
  // The kernel's erf approximation has absolute error below 1.5e-7.
  gelu: { f: T.gelu, ref: gelu, lo: -6, hi: 6, tol: { rtol: 1e-5, atol: 1e-6 } },
  sin: { f: T.sin, ref: Math.sin, lo: -10, hi: 10 },
  cos: { f: T.cos, ref: Math.cos, lo: -10, hi: 10 },
  square: { f: T.square, ref: (x) => x * x, lo: -10, hi: 10 },
  reciprocal: { f: T.reciprocal, ref: (x) => 1 / x, lo: 0.1, hi: 10 },
  addScalar: { f: (t) => T.add(t, 2.5), ref: (x) => x + 2.5, lo: -5, hi: 5 },
  mulScalar: { f: (t) => T.mul(t, -1.5), ref: (x) => x * -1.5, lo: -5, hi: 5 },
  rsubScalar: { f: (t) => T.rsub(t, 3), ref: (x) => 3 - x, lo: -5, hi: 5 },
  divScalar: { f: (t) => T.div(t, 4), ref: (x) => x / 4, lo: -5, hi: 5 },
  powScalar: { f: (t) => T.pow(t, 3), ref: (x) => x ** 3, lo: -3, hi: 3 },
  powHalf: { f: (t) => T.pow(t, 0.5), ref: (x) => x ** 0.5, lo: 0, hi: 9 },
  clamp: { f: (t) => T.clamp(t, -0.5, 0.75), ref: (x) => Math.min(0.75, Math.max(-0.5, x)), lo: -2, hi: 2 },
  affine: { f: (t) => T.affine(t, 2, -1), ref: (x) => 2 * x - 1, lo: -2, hi: 2 },
  maximumScalar: { f: (t) => T.maximum(t, 0.25), ref: (x) => Math.max(x, 0.25), lo: -2, hi: 2 },
  minimumScalar: { f: (t) => T.minimum(t, 0.25), ref: (x) => Math.min(x, 0.25), lo: -2, hi: 2 },
  sign: { f: T.sign, ref: Math.sign, lo: -5, hi: 5, noGradient: true },
  floor: { f: T.floor, ref: Math.floor, lo: -5, hi: 5, noGradient: true },
} satisfies Record<T.DifferentiableUnary, UnaryCase> & Record<string, UnaryCase>;

export type BinaryCase = { f: (a: Tensor, b: Tensor) => Tensor; ref: (a: number, b: number) => number; positiveB?: boolean; positiveA?: boolean };
export const BINARY_CASES: Record<string, BinaryCase> = {
  add: { f: T.add, ref: (a, b) => a + b },
  sub: { f: T.sub, ref: (a, b) => a - b },
  mul: { f: T.mul, ref: (a, b) => a * b },
  div: { f: T.div, ref: (a, b) => a / b, positiveB: true },
  pow: { f: T.pow, ref: (a, b) => a ** b, positiveA: true },
  maximum: { f: T.maximum, ref: Math.max },
  minimum: { f: T.minimum, ref: Math.min },
  eq: { f: T.eq, ref: (a, b) => +(a === b) },
  ne: { f: T.ne, ref: (a, b) => +(a !== b) },
  lt: { f: T.lt, ref: (a, b) => +(a < b) },
  le: { f: T.le, ref: (a, b) => +(a <= b) },
  gt: { f: T.gt, ref: (a, b) => +(a > b) },
  ge: { f: T.ge, ref: (a, b) => +(a >= b) },
} satisfies Record<T.DifferentiableBinary | T.ComparisonBinary, BinaryCase>;

/** Shape pairs: same shape (vec4 path), trailing-axis, middle-axis and scalar broadcasting, rank 8. */
export const BROADCAST_PAIRS: [number[], number[]][] = [
  [[1027], [1027]],
  [[3, 5, 7], [3, 5, 7]],
  [[3, 5, 7], [7]],
  [[3, 1, 7], [1, 5, 1]],
  [[5, 1], [1, 33]],
  [[], [4, 4]],
  [[2, 3], []],
  [[1], [3, 1, 2]],
  [[2, 1, 3, 1, 2, 1, 3, 2], [1, 2, 1, 3, 1, 2, 1, 1]],
];

