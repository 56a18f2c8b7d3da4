/** Elementwise ops with NumPy broadcasting, scalars, and their backward rules. */
import { binaryKernel, MAX_RANK, unaryKernel, whereKernel, type BinaryOp, type UnaryOp } from '@transfuse/kernels';
import { record } from '../autograd.js';
import { broadcastShapes, broadcastStrides, collapse, fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { full } from './creation.js';
import { sumTo } from './reduce.js';
import { empty, expectTensors, run1d } from './util.js';
import { checkOptionKeys } from '../options.js';

/** Runs a unary kernel (no autograd). */
export function mapUnary(op: UnaryOp, x: Tensor, p0 = 0, p1 = 0, name: string = op): Tensor {
  expectTensors(name, 'float32', x);
  const y = empty(x.shape, 'float32', name);
  const n4 = Math.ceil(x.size / 4);
  run1d(unaryKernel(op), name, n4, [x], [y], { n4, p0, p1 });
  return y;
}

function packDims(v: number[]): number[] {
  const out = new Array<number>(MAX_RANK).fill(0);
  v.forEach((x, i) => (out[i] = x));
  return out;
}

/** Broadcast strides of each operand over `shape`, merged to the smallest rank. */
function broadcastLayout(op: string, shape: number[], operands: Tensor[]) {
  const c = collapse(shape, operands.map((t) => broadcastStrides(t.shape, shape)));
  if (c.shape.length > MAX_RANK) throw new Error(`${op}: broadcasting over ${c.shape.length} axes ${fmt(shape)}; at most ${MAX_RANK} are supported`);
  // Everything of size 1 collapses to rank 0: walk it as one axis.
  if (c.shape.length === 0) return { rank: 1, shape: packDims([1]), strides: operands.map(() => packDims([0])) };
  return { rank: c.shape.length, shape: packDims(c.shape), strides: c.strides.map(packDims) };
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

// ---- unary ops ----

type UnaryRule = (g: Tensor, x: Tensor, y: Tensor) => Tensor | null;

function unaryOp(op: UnaryOp, x: Tensor, rule: UnaryRule, saves: 'x' | 'y' | 'xy' | 'none', p0 = 0, p1 = 0, name: string = op): Tensor {
  const y = mapUnary(op, x, p0, p1, name);
  const save = saves === 'x' ? [x] : saves === 'y' ? [y] : saves === 'xy' ? [x, y] : [];
  return record(name, [x], y, (g, s) => {
    const sx = saves === 'x' || saves === 'xy' ? s[0] : x;
    const sy = saves === 'y' ? s[0] : saves === 'xy' ? s[1] : y;
    return [rule(g, sx, sy)];
  }, save);
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x, (g) => neg(g), 'none');
export const exp = (x: Tensor): Tensor => unaryOp('exp', x, (g, _x, y) => mapBinary('mul', g, y), 'y');
export const log = (x: Tensor): Tensor => unaryOp('log', x, (g, x) => mapBinary('div', g, x), 'x');
export const sqrt = (x: Tensor): Tensor =>
  unaryOp('sqrt', x, (g, _x, y) => mapUnary('mulScalar', mapBinary('div', g, y), 0.5), 'y');
export const rsqrt = (x: Tensor): Tensor =>
  unaryOp('rsqrt', x, (g, _x, y) => mapBinary('mul', g, mapUnary('mulScalar', mapUnary('powScalar', y, 3), -0.5)), 'y');
export const abs = (x: Tensor): Tensor => unaryOp('abs', x, (g, x) => mapBinary('mul', g, mapUnary('sign', x)), 'x');
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x, (g, _x, y) => mapBinary('tanhGrad', y, g), 'y');
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x, (g, _x, y) => mapBinary('sigmoidGrad', y, g), 'y');
export const relu = (x: Tensor): Tensor => unaryOp('relu', x, (g, x) => mapBinary('reluGrad', x, g), 'x');
export const silu = (x: Tensor): Tensor => unaryOp('silu', x, (g, x) => mapBinary('siluGrad', x, g), 'x');
export interface GeluOptions {
  /** 'none' (default): the exact erf form, PyTorch's default; 'tanh': F.gelu(x, approximate='tanh'). */
  approximate?: 'none' | 'tanh';
}

/** GELU, exact (erf) form by default as PyTorch's; `{ approximate: 'tanh' }` for the tanh form. */
export function gelu(x: Tensor, o: GeluOptions = {}): Tensor {
  checkOptionKeys('gelu', o, ['approximate']);
  const a = o.approximate ?? 'none';
  if (a === 'tanh') return unaryOp('geluTanh', x, (g, x) => mapBinary('geluTanhGrad', x, g), 'x');
  if (a !== 'none') throw new Error(`gelu: approximate must be 'none' or 'tanh', got '${String(a)}'`);
  return unaryOp('gelu', x, (g, x) => mapBinary('geluGrad', x, g), 'x');
}
export const sin = (x: Tensor): Tensor => unaryOp('sin', x, (g, x) => mapBinary('mul', g, mapUnary('cos', x)), 'x');
export const cos = (x: Tensor): Tensor => unaryOp('cos', x, (g, x) => neg(mapBinary('mul', g, mapUnary('sin', x))), 'x');
export const square = (x: Tensor): Tensor =>
  unaryOp('square', x, (g, x) => mapUnary('mulScalar', mapBinary('mul', g, x), 2), 'x');
export const reciprocal = (x: Tensor): Tensor =>
  unaryOp('reciprocal', x, (g, _x, y) => neg(mapBinary('mul', g, mapUnary('square', y))), 'y');
/** sign(x) and floor(x) have zero gradient almost everywhere. */
export const sign = (x: Tensor): Tensor => unaryOp('sign', x, () => null, 'none');
export const floor = (x: Tensor): Tensor => unaryOp('floor', x, () => null, 'none');

export function clamp(x: Tensor, min: number, max: number): Tensor {
  if (Number.isNaN(min) || Number.isNaN(max) || min > max) throw new Error(`clamp: need min <= max, got ${min} and ${max}`);
  return unaryOp('clamp', x, (g, x) => mapBinary('mul', g, mapUnary('clampMask', x, min, max)), 'x', min, max);
}

/** p0 · x + p1 in one pass. */
export function affine(x: Tensor, scale: number, shift: number): Tensor {
  return unaryOp('affine', x, (g) => mapUnary('mulScalar', g, scale), 'none', scale, shift);
}

// ---- binary ops ----

function checkScalar(op: string, v: number): void {
  if (typeof v !== 'number') throw new Error(`${op}: expected a Tensor or a number, got ${typeof v}`);
}

export function add(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    checkScalar('add', b);
    return unaryOp('addScalar', a, (g) => g, 'none', b, 0, 'add');
  }
  const y = mapBinary('add', a, b);
  return record('add', [a, b], y, (g) => [sumTo(g, a.shape), sumTo(g, b.shape)]);
}

export function sub(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return add(a, -b);
  const y = mapBinary('sub', a, b);
  return record('sub', [a, b], y, (g) => [sumTo(g, a.shape), sumTo(neg(g), b.shape)]);
}

/** b - a for a number b. */
export function rsub(a: Tensor, b: number): Tensor {
  return unaryOp('rsubScalar', a, (g) => neg(g), 'none', b, 0, 'rsub');
}

export function mul(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    checkScalar('mul', b);
    return unaryOp('mulScalar', a, (g) => mapUnary('mulScalar', g, b), 'none', b, 0, 'mul');
  }
  const y = mapBinary('mul', a, b);
  return record('mul', [a, b], y, (g, [sa, sb], need) => [
    need[0] ? sumTo(mapBinary('mul', g, sb), a.shape) : null,
    need[1] ? sumTo(mapBinary('mul', g, sa), b.shape) : null,
  ], [a, b]);
}

export function div(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    if (b === 0) throw new Error('div: division by the number 0');
    return mul(a, 1 / b);
  }
  const y = mapBinary('div', a, b);
  return record('div', [a, b], y, (g, [sa, sb], need) => {
    const ga = mapBinary('div', g, sb);
    return [
      need[0] ? sumTo(ga, a.shape) : null,
      need[1] ? sumTo(neg(mapBinary('mul', ga, mapBinary('div', sa, sb))), b.shape) : null,
    ];
  }, [a, b]);
}

/** a ** b. For a negative base, integer exponents follow the sign rule; others give NaN. */
export function pow(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    checkScalar('pow', b);
    return unaryOp('powScalar', a, (g, x) => mapBinary('mul', g, mapUnary('mulScalar', mapUnary('powScalar', x, b - 1), b)), 'x', b, 0, 'pow');
  }
  const y = mapBinary('pow', a, b);
  return record('pow', [a, b], y, (g, [sa, sb, sy], need) => [
    // d/da = b · a^(b-1); d/db = a^b · ln a
    need[0] ? sumTo(mapBinary('mul', g, mapBinary('mul', sb, mapBinary('pow', sa, mapUnary('addScalar', sb, -1)))), a.shape) : null,
    need[1] ? sumTo(mapBinary('mul', g, mapBinary('mul', sy, mapUnary('log', sa))), b.shape) : null,
  ], [a, b, y]);
}

/** Elementwise max; at ties the gradient goes to `a`. */
export function maximum(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    checkScalar('maximum', b);
    return unaryOp('clamp', a, (g, x) => mapBinary('mul', g, mapUnary('geScalar', x, b)), 'x', b, Infinity, 'maximum');
  }
  const y = mapBinary('maximum', a, b);
  return record('maximum', [a, b], y, (g, [sa, sb], need) => {
    const mask = mapBinary('ge', sa, sb);
    return [
      need[0] ? sumTo(mapBinary('mul', g, mask), a.shape) : null,
      need[1] ? sumTo(mapBinary('mul', g, mapUnary('rsubScalar', mask, 1)), b.shape) : null,
    ];
  }, [a, b]);
}

/** Elementwise min; at ties the gradient goes to `a`. */
export function minimum(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    checkScalar('minimum', b);
    return unaryOp('clamp', a, (g, x) => mapBinary('mul', g, mapUnary('leScalar', x, b)), 'x', -Infinity, b, 'minimum');
  }
  const y = mapBinary('minimum', a, b);
  return record('minimum', [a, b], y, (g, [sa, sb], need) => {
    const mask = mapBinary('le', sa, sb);
    return [
      need[0] ? sumTo(mapBinary('mul', g, mask), a.shape) : null,
      need[1] ? sumTo(mapBinary('mul', g, mapUnary('rsubScalar', mask, 1)), b.shape) : null,
    ];
  }, [a, b]);
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
