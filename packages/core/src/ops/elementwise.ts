/** Elementwise ops with NumPy broadcasting, scalars, and their backward rules. */
import { binaryKernel, MAX_RANK, unaryKernel, whereKernel, type BinaryOp, type UnaryOp } from '@transfuse/kernels';
import { record } from '../autograd/tape.js';
import { broadcastShapes, broadcastStrides, collapse, fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { full } from './creation.js';
import { sumTo } from './sum.js';
import { empty, expectTensors, pack, run1d } from './util.js';
import { checkOptionKeys } from '../options.js';

/** Runs a unary kernel (no autograd). */
export function mapUnary(op: UnaryOp, x: Tensor, p0 = 0, p1 = 0, name: string = op): Tensor {
  expectTensors(name, 'float32', x);
  const y = empty(x.shape, 'float32', name);
  const n4 = Math.ceil(x.size / 4);
  run1d(unaryKernel(op), name, n4, [x], [y], { n4, p0, p1 });
  return y;
}

/** Broadcast strides of each operand over `shape`, merged to the smallest rank. */
function broadcastLayout(op: string, shape: number[], operands: Tensor[]) {
  const c = collapse(shape, operands.map((t) => broadcastStrides(t.shape, shape)));
  if (c.shape.length > MAX_RANK) throw new Error(`${op}: broadcasting over ${c.shape.length} axes ${fmt(shape)}; at most ${MAX_RANK} are supported`);
  // Everything of size 1 collapses to rank 0: walk it as one axis.
  if (c.shape.length === 0) return { rank: 1, shape: pack([1]), strides: operands.map(() => pack([0])) };
  return { rank: c.shape.length, shape: pack(c.shape), strides: c.strides.map(pack) };
}

/** Runs a binary kernel with broadcasting (no autograd). */
export function mapBinary(op: BinaryOp, a: Tensor, b: Tensor, name: string = op): Tensor {
  expectTensors(name, 'float32', a, b);
  const shape = broadcastShapes(a.shape, b.shape, name);
  const y = empty(shape, 'float32', name);
  if (a.shape.join() === b.shape.join()) {
    const n4 = Math.ceil(y.size / 4);
    run1d(binaryKernel(op, 'same'), name, n4, [a, b], [y], { n4 });
  } else {
    const L = broadcastLayout(name, shape, [a, b]);
    run1d(binaryKernel(op, 'broadcast', L.rank), name, y.size, [a, b], [y], {
      n: y.size,
      pad0: 0,
      pad1: 0,
      shape: L.shape,
      sa: L.strides[0],
      sb: L.strides[1],
    });
  }
  return y;
}

// ---- rule tables: every UNARY/BINARY kernel row is a differentiable op with a rule here, or a helper ----

/** Unary rows that only serve other ops (masks, comparisons, guards): they need no rule of their own. */
type HelperUnary = 'clampMask' | 'eqScalar' | 'ltScalar' | 'gtScalar' | 'leScalar' | 'geScalar' | 'nonFinite';
/** Every other unary kernel row: a new row lands here and does not compile without a rule (and a test case). */
export type DifferentiableUnary = Exclude<UnaryOp, HelperUnary>;

/** Comparisons give float32 0/1 and no gradient; the *Grad rows are fused backward rules. */
export type ComparisonBinary = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type DifferentiableBinary = Exclude<BinaryOp, ComparisonBinary | `${string}Grad`>;

/** Which of x and y = f(x) the rule reads (saved for backward), and dL/dx from g = dL/dy; p0/p1 are the row's parameters. */
interface UnaryRule {
  saves: 'x' | 'y' | 'none';
  grad: (g: Tensor, x: Tensor, y: Tensor, p0: number, p1: number) => Tensor | null;
}

const UNARY_RULES: { [K in DifferentiableUnary]: UnaryRule } = {
  neg: { saves: 'none', grad: (g) => neg(g) },
  exp: { saves: 'y', grad: (g, _x, y) => mapBinary('mul', g, y) },
  log: { saves: 'x', grad: (g, x) => mapBinary('div', g, x) },
  sqrt: { saves: 'y', grad: (g, _x, y) => mapUnary('mulScalar', mapBinary('div', g, y), 0.5) },
  rsqrt: { saves: 'y', grad: (g, _x, y) => mapBinary('mul', g, mapUnary('mulScalar', mapUnary('powScalar', y, 3), -0.5)) },
  abs: { saves: 'x', grad: (g, x) => mapBinary('mul', g, mapUnary('sign', x)) },
  tanh: { saves: 'y', grad: (g, _x, y) => mapBinary('tanhGrad', y, g) },
  sigmoid: { saves: 'y', grad: (g, _x, y) => mapBinary('sigmoidGrad', y, g) },
  relu: { saves: 'x', grad: (g, x) => mapBinary('reluGrad', x, g) },
  silu: { saves: 'x', grad: (g, x) => mapBinary('siluGrad', x, g) },
  gelu: { saves: 'x', grad: (g, x) => mapBinary('geluGrad', x, g) },
  geluTanh: { saves: 'x', grad: (g, x) => mapBinary('geluTanhGrad', x, g) },
  sin: { saves: 'x', grad: (g, x) => mapBinary('mul', g, mapUnary('cos', x)) },
  cos: { saves: 'x', grad: (g, x) => neg(mapBinary('mul', g, mapUnary('sin', x))) },
  square: { saves: 'x', grad: (g, x) => mapUnary('mulScalar', mapBinary('mul', g, x), 2) },
  reciprocal: { saves: 'y', grad: (g, _x, y) => neg(mapBinary('mul', g, mapUnary('square', y))) },
  // sign(x) and floor(x) have zero gradient almost everywhere: no gradient flows.
  sign: { saves: 'none', grad: () => null },
  floor: { saves: 'none', grad: () => null },
  addScalar: { saves: 'none', grad: (g) => g },
  mulScalar: { saves: 'none', grad: (g, _x, _y, b) => mapUnary('mulScalar', g, b) },
  affine: { saves: 'none', grad: (g, _x, _y, scale) => mapUnary('mulScalar', g, scale) },
  rsubScalar: { saves: 'none', grad: (g) => neg(g) },
  powScalar: { saves: 'x', grad: (g, x, _y, b) => mapBinary('mul', g, mapUnary('mulScalar', mapUnary('powScalar', x, b - 1), b)) },
  clamp: { saves: 'x', grad: (g, x, _y, min, max) => mapBinary('mul', g, mapUnary('clampMask', x, min, max)) },
};

/** dL/da and dL/db at the broadcast shape (summed back to each input's shape by the caller); null where not needed. */
interface BinaryRule {
  saves: 'none' | 'ab' | 'aby';
  grad: (g: Tensor, a: Tensor, b: Tensor, y: Tensor, need: readonly boolean[]) => [Tensor | null, Tensor | null];
}

const BINARY_RULES: { [K in DifferentiableBinary]: BinaryRule } = {
  add: { saves: 'none', grad: (g) => [g, g] },
  sub: { saves: 'none', grad: (g, _a, _b, _y, need) => [g, need[1] ? neg(g) : null] },
  mul: { saves: 'ab', grad: (g, a, b, _y, need) => [need[0] ? mapBinary('mul', g, b) : null, need[1] ? mapBinary('mul', g, a) : null] },
  div: {
    saves: 'ab',
    grad: (g, a, b, _y, need) => {
      const ga = mapBinary('div', g, b);
      return [need[0] ? ga : null, need[1] ? neg(mapBinary('mul', ga, mapBinary('div', a, b))) : null];
    },
  },
  // d/da = b · a^(b-1); d/db = a^b · ln a
  pow: {
    saves: 'aby',
    grad: (g, a, b, y, need) => [
      need[0] ? mapBinary('mul', g, mapBinary('mul', b, mapBinary('pow', a, mapUnary('addScalar', b, -1)))) : null,
      need[1] ? mapBinary('mul', g, mapBinary('mul', y, mapUnary('log', a))) : null,
    ],
  },
  // At ties the gradient goes to `a`.
  maximum: { saves: 'ab', grad: (g, a, b, _y, need) => maskedPair(g, mapBinary('ge', a, b), need) },
  minimum: { saves: 'ab', grad: (g, a, b, _y, need) => maskedPair(g, mapBinary('le', a, b), need) },
};

/** [g · mask, g · (1 - mask)] for the two inputs of maximum/minimum. */
function maskedPair(g: Tensor, mask: Tensor, need: readonly boolean[]): [Tensor | null, Tensor | null] {
  return [need[0] ? mapBinary('mul', g, mask) : null, need[1] ? mapBinary('mul', g, mapUnary('rsubScalar', mask, 1)) : null];
}

/** Runs unary row `op` and records its rule (or `rule`, for an op that reuses another row). */
function unaryOp(op: DifferentiableUnary, x: Tensor, p0 = 0, p1 = 0, name: string = op, rule: UnaryRule = UNARY_RULES[op]): Tensor {
  const y = mapUnary(op, x, p0, p1, name);
  const save = rule.saves === 'x' ? [x] : rule.saves === 'y' ? [y] : [];
  return record(name, [x], y, (g, s) => {
    const sx = rule.saves === 'x' ? s[0] : x;
    const sy = rule.saves === 'y' ? s[0] : y;
    return [rule.grad(g, sx, sy, p0, p1)];
  }, save);
}

/** Runs binary row `op` with broadcasting and records its rule. */
function binaryOp(op: DifferentiableBinary, a: Tensor, b: Tensor): Tensor {
  const rule = BINARY_RULES[op];
  const y = mapBinary(op, a, b);
  const save = rule.saves === 'none' ? [] : rule.saves === 'ab' ? [a, b] : [a, b, y];
  return record(op, [a, b], y, (g, s, need) => {
    const [ga, gb] = rule.saves === 'none' ? rule.grad(g, a, b, y, need) : rule.grad(g, s[0], s[1], s[2] ?? y, need);
    return [ga && sumTo(ga, a.shape), gb && sumTo(gb, b.shape)];
  }, save);
}

// ---- unary ops ----

export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
export const silu = (x: Tensor): Tensor => unaryOp('silu', x);
export interface GeluOptions {
  /** 'none' (default): the exact erf form, PyTorch's default; 'tanh': F.gelu(x, approximate='tanh'). */
  approximate?: 'none' | 'tanh';
}

/** GELU, exact (erf) form by default as PyTorch's; `{ approximate: 'tanh' }` for the tanh form. */
export function gelu(x: Tensor, o: GeluOptions = {}): Tensor {
  checkOptionKeys('gelu', o, ['approximate']);
  const a = o.approximate ?? 'none';
  if (a !== 'none' && a !== 'tanh') throw new Error(`gelu: approximate must be 'none' or 'tanh', got '${String(a)}'`);
  return unaryOp(a === 'tanh' ? 'geluTanh' : 'gelu', x);
}
export const sin = (x: Tensor): Tensor => unaryOp('sin', x);
export const cos = (x: Tensor): Tensor => unaryOp('cos', x);
export const square = (x: Tensor): Tensor => unaryOp('square', x);
export const reciprocal = (x: Tensor): Tensor => unaryOp('reciprocal', x);
export const sign = (x: Tensor): Tensor => unaryOp('sign', x);
export const floor = (x: Tensor): Tensor => unaryOp('floor', x);

export function clamp(x: Tensor, min: number, max: number): Tensor {
  if (Number.isNaN(min) || Number.isNaN(max) || min > max) throw new Error(`clamp: need min <= max, got ${min} and ${max}`);
  return unaryOp('clamp', x, min, max);
}

/** p0 · x + p1 in one pass. */
export function affine(x: Tensor, scale: number, shift: number): Tensor {
  return unaryOp('affine', x, scale, shift);
}

// ---- binary ops ----

function checkScalar(op: string, v: number): void {
  if (typeof v !== 'number') throw new Error(`${op}: expected a Tensor or a number, got ${typeof v}`);
}

export function add(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? unaryOp('addScalar', a, b, 0, 'add') : binaryOp('add', a, b);
}

export function sub(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return add(a, -b);
  return binaryOp('sub', a, b);
}

/** b - a for a number b. */
export function rsub(a: Tensor, b: number): Tensor {
  return unaryOp('rsubScalar', a, b, 0, 'rsub');
}

export function mul(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? unaryOp('mulScalar', a, b, 0, 'mul') : binaryOp('mul', a, b);
}

export function div(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    if (b === 0) throw new Error('div: division by the number 0');
    return mul(a, 1 / b);
  }
  return binaryOp('div', a, b);
}

/** a ** b. For a negative base, integer exponents follow the sign rule; others give NaN. */
export function pow(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? unaryOp('powScalar', a, b, 0, 'pow') : binaryOp('pow', a, b);
}

// With a number b: the clamp row with one open bound, and the one-sided mask as the rule.
const MAXIMUM_SCALAR: UnaryRule = { saves: 'x', grad: (g, x, _y, b) => mapBinary('mul', g, mapUnary('geScalar', x, b)) };
const MINIMUM_SCALAR: UnaryRule = { saves: 'x', grad: (g, x, _y, _lo, b) => mapBinary('mul', g, mapUnary('leScalar', x, b)) };

/** Elementwise max; at ties the gradient goes to `a`. */
export function maximum(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? unaryOp('clamp', a, b, Infinity, 'maximum', MAXIMUM_SCALAR) : binaryOp('maximum', a, b);
}

/** Elementwise min; at ties the gradient goes to `a`. */
export function minimum(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? unaryOp('clamp', a, -Infinity, b, 'minimum', MINIMUM_SCALAR) : binaryOp('minimum', a, b);
}

// ---- comparisons: float32 0/1 results, no gradient ----

const SCALAR_COMPARE = { eq: 'eqScalar', lt: 'ltScalar', gt: 'gtScalar', le: 'leScalar', ge: 'geScalar' } as const;

function compare(op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge', a: Tensor, b: Tensor | number): Tensor {
  if (typeof b !== 'number') return mapBinary(op, a, b);
  checkScalar(op, b);
  if (op === 'ne') return mapUnary('rsubScalar', mapUnary('eqScalar', a, b, 0, op), 1, 0, op);
  return mapUnary(SCALAR_COMPARE[op], a, b, 0, op);
}

export const eq = (a: Tensor, b: Tensor | number): Tensor => compare('eq', a, b);
export const ne = (a: Tensor, b: Tensor | number): Tensor => compare('ne', a, b);
export const lt = (a: Tensor, b: Tensor | number): Tensor => compare('lt', a, b);
export const le = (a: Tensor, b: Tensor | number): Tensor => compare('le', a, b);
export const gt = (a: Tensor, b: Tensor | number): Tensor => compare('gt', a, b);
export const ge = (a: Tensor, b: Tensor | number): Tensor => compare('ge', a, b);

/** cond ? a : b elementwise, with broadcasting; `cond` is a float32 mask (non-zero is true). */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const op = 'where';
  const ta = typeof a === 'number' ? full([], a) : a;
  const tb = typeof b === 'number' ? full([], b) : b;
  expectTensors(op, 'float32', cond, ta, tb);
  const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape, op), tb.shape, op);
  const y = empty(shape, 'float32', op);
  const L = broadcastLayout(op, shape, [cond, ta, tb]);
  run1d(whereKernel(L.rank), op, y.size, [cond, ta, tb], [y], {
    n: y.size,
    pad0: 0,
    pad1: 0,
    shape: L.shape,
    sc: L.strides[0],
    sa: L.strides[1],
    sb: L.strides[2],
  });
  if (typeof a === 'number') ta.dispose();
  if (typeof b === 'number') tb.dispose();
  return record(op, [cond, ta, tb], y, (g, [c], need) => {
    const zero = full([], 0);
    return [
      null,
      need[1] ? sumTo(where(c, g, zero), ta.shape) : null,
      need[2] ? sumTo(where(c, zero, g), tb.shape) : null,
    ];
  }, [cond]);
}
