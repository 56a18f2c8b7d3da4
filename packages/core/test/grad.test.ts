/**
 * Gradient checks: every differentiable op's autograd gradient (GPU, float32) against central
 * finite differences of its float64 reference, on random odd shapes with broadcasting. The loss
 * is Σ op(x)·w with random w, so every output element carries a different weight.
 */
import { describe, expect, test } from 'vitest';
import * as T from '@transfuse/core';
import { tensor, type Tensor } from '@transfuse/core';
import { BINARY_CASES, UNARY_CASES } from './cases.js';
import { expectClose, f32, freshSeed, randomArray, seededRandom, useGpu, values } from './helpers.js';
import * as ref from './reference.js';

useGpu();

type Arr = ref.Arr;
interface GradCase {
  shapes: number[][];
  gpu: (xs: Tensor[]) => Tensor;
  cpu: (xs: Arr[]) => Arr;
  /** Input domain per input (default [-2, 2]). */
  domain?: [number, number][];
  /** Inputs that are not differentiated (e.g. a condition). */
  constant?: number[];
}

/** Gradient of Σ cpu(xs)·w with respect to input k by central differences in float64. */
function finiteDifference(c: GradCase, xs: Arr[], w: Float64Array, k: number): Float64Array {
  const loss = () => {
    const y = c.cpu(xs).data;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * w[i];
    return s;
  };
  const g = new Float64Array(xs[k].data.length);
  for (let j = 0; j < g.length; j++) {
    const x0 = xs[k].data[j];
    const h = 1e-6 * Math.max(1, Math.abs(x0));
    xs[k].data[j] = x0 + h;
    const up = loss();
    xs[k].data[j] = x0 - h;
    const down = loss();
    xs[k].data[j] = x0;
    g[j] = (up - down) / (2 * h);
  }
  return g;
}

async function gradCheck(name: string, c: GradCase): Promise<void> {
  const seed = freshSeed();
  const rng = seededRandom(seed);
  const xs: Arr[] = c.shapes.map((s, i) => {
    const [lo, hi] = c.domain?.[i] ?? [-2, 2];
    return { data: f32(randomArray(ref.size(s), rng, lo, hi)), shape: s };
  });
  const want = c.cpu(xs);
  const w = f32(randomArray(want.data.length, rng, -1, 1));
  const inputs = xs.map((x, k) => tensor(Float32Array.from(x.data), x.shape).requireGrad(!c.constant?.includes(k)));
  const y = c.gpu(inputs);
  expect(y.shape, `${name} output shape`).toEqual(want.shape);
  T.sum(T.mul(y, tensor(Float32Array.from(w), want.shape))).backward();
  for (let k = 0; k < xs.length; k++) {
    if (c.constant?.includes(k)) continue;
    expect(inputs[k].grad, `${name}: input ${k} got no gradient`).not.toBeNull();
    const fd = finiteDifference(c, xs, w, k);
    expectClose(await values(inputs[k].grad!), fd, { rtol: 2e-3, atol: 2e-4 }, `${name} d/dx${k} seed=${seed}`);
  }
}

const unaryRef = (f: (x: number) => number) => (xs: Arr[]) => ({ data: xs[0].data.map(f), shape: xs[0].shape });

const reduceRef = (axes: number[] | undefined, keepdims: boolean, init: number, step: (a: number, v: number) => number, finish?: (a: number, n: number) => number) => (xs: Arr[]) => {
  const ax = axes ?? xs[0].shape.map((_, i) => i);
  const r = ref.reduce(xs[0], ax, init, step, finish);
  return { data: r.data, shape: keepdims ? r.keptShape : xs[0].shape.filter((_, i) => !ax.includes(i)) };
};

/** Softmax-family reference along one axis. */
function alongAxis(axis: number, f: (row: number[]) => number[]) {
  return (xs: Arr[]): Arr => {
    const { data, shape } = xs[0];
    const out = new Float64Array(data.length);
    const st = ref.strides(shape);
    for (let i = 0; i < data.length; i++) {
      const c = ref.coords(i, shape);
      if (c[axis] !== 0) continue;
      const idx = Array.from({ length: shape[axis] }, (_, j) => i + j * st[axis]);
      const row = f(idx.map((k) => data[k]));
      idx.forEach((k, j) => (out[k] = row[j]));
    }
    return { data: out, shape };
  };
}
const softmaxRow = (r: number[]) => {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

/** SiLU(GroupNorm(x) · w + b) for x [n, c, ...spatial]: the float64 definition. */
function groupNormCase(n: number, c: number, spatial: number[], groups: number): GradCase {
  const hw = spatial.reduce((a, b) => a * b, 1);
  return {
    shapes: [[n, c, ...spatial], [c], [c]],
    gpu: ([x, w, b]) => T.groupNorm(x, groups, w, b, 1e-5, 'silu'),
    cpu: ([x, w, b]) => {
      const out = new Float64Array(x.data.length);
      const per = (c / groups) * hw;
      for (let row = 0; row < n * groups; row++) {
        const seg = x.data.slice(row * per, (row + 1) * per);
        const m = seg.reduce((a, v) => a + v, 0) / per;
        const v = seg.reduce((a, u) => a + (u - m) ** 2, 0) / per;
        seg.forEach((u, j) => {
          const ch = (row % groups) * (c / groups) + Math.floor(j / hw);
          const z = ((u - m) / Math.sqrt(v + 1e-5)) * w.data[ch] + b.data[ch];
          out[row * per + j] = z / (1 + Math.exp(-z));
        });
      }
      return { data: out, shape: x.shape };
    },
  };
}

const CASES: Record<string, GradCase> = {};
for (const [name, u] of Object.entries(UNARY_CASES)) {
  if (u.noGradient) continue; // checked below: no gradient flows
  // Keep finite differences away from overflow and kinks' neighbourhoods are measure-zero.
  const lo = Math.max(u.lo, -8);
  const hi = Math.min(u.hi, 8);
  CASES[`unary ${name}`] = { shapes: [[3, 5, 7]], gpu: ([x]) => u.f(x), cpu: unaryRef(u.ref), domain: [[name === 'log' || name === 'rsqrt' || name === 'reciprocal' || name === 'sqrt' || name === 'powHalf' ? Math.max(lo, 0.2) : lo, hi]] };
}
for (const [name, b] of Object.entries(BINARY_CASES)) {
  if (name.length === 2) continue; // comparisons have no gradient
  for (const [sa, sb] of [[[3, 5, 7], [3, 5, 7]], [[3, 1, 7], [5, 1]], [[7], [2, 3, 7]]] as number[][][]) {
    CASES[`${name} ${JSON.stringify(sa)}·${JSON.stringify(sb)}`] = {
      shapes: [sa, sb],
      gpu: ([x, y]) => b.f(x, y),
      cpu: ([x, y]) => ref.binary(x, y, b.ref),
      domain: [b.positiveA ? [0.5, 2] : [-2, 2], b.positiveB ? [0.5, 2] : [-2, 2]],
    };
  }
}
Object.assign(CASES, {
  'where (both branches)': {
    shapes: [[3, 5], [3, 5], [5]],
    constant: [0],
    gpu: ([c, a, b]) => T.where(T.gt(c, 0), a, b),
    cpu: ([c, a, b]) => ref.ternary(c, a, b, (k, x, y) => (k > 0 ? x : y)),
  },
  'sum axes [0,2] keepdims': { shapes: [[3, 5, 7]], gpu: ([x]) => T.sum(x, [0, 2], true), cpu: reduceRef([0, 2], true, 0, (a, v) => a + v) },
  'sum all': { shapes: [[3, 5, 7]], gpu: ([x]) => T.sum(x), cpu: reduceRef(undefined, false, 0, (a, v) => a + v) },
  'mean axis 1': { shapes: [[3, 5, 7]], gpu: ([x]) => T.mean(x, 1), cpu: reduceRef([1], false, 0, (a, v) => a + v, (a, n) => a / n) },
  'max axis -1': { shapes: [[3, 5, 7]], gpu: ([x]) => T.max(x, -1), cpu: reduceRef([2], false, -Infinity, (a, v) => Math.max(a, v)) },
  'min axes [0,1]': { shapes: [[3, 5, 7]], gpu: ([x]) => T.min(x, [0, 1]), cpu: reduceRef([0, 1], false, Infinity, (a, v) => Math.min(a, v)) },
  'var axis 2 (sample)': {
    shapes: [[3, 5, 7]],
    gpu: ([x]) => T.variance(x, 2, false, 1),
    cpu: (xs) => {
      const r = alongAxis(2, (row) => {
        const m = row.reduce((a, b) => a + b, 0) / row.length;
        const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / (row.length - 1);
        return row.map((_, j) => (j === 0 ? v : 0));
      })(xs);
      return { data: r.data.filter((_, i) => i % 7 === 0), shape: [3, 5] };
    },
  },
  'softmax axis 1': { shapes: [[3, 5, 7]], gpu: ([x]) => T.softmax(x, 1), cpu: alongAxis(1, softmaxRow) },
  'logSoftmax axis -1': { shapes: [[3, 5, 7]], gpu: ([x]) => T.logSoftmax(x, -1), cpu: alongAxis(2, (r) => softmaxRow(r).map(Math.log)) },
  'logsumexp axis 0': {
    shapes: [[3, 5, 7]],
    gpu: ([x]) => T.logsumexp(x, 0),
    cpu: reduceRef([0], false, 0, (a, v) => a + Math.exp(v), (a) => Math.log(a)),
  },
  // 4 rows: one workgroup per row.
  'groupNorm + SiLU (affine, 2 groups)': groupNormCase(2, 4, [3, 5], 2),
  // 132 rows: one invocation per row (the other kernel variant).
  'groupNorm + SiLU (affine, 4 groups, many rows)': groupNormCase(33, 8, [3, 2], 4),
  reshape: { shapes: [[3, 5, 7]], gpu: ([x]) => x.reshape([7, 15]), cpu: ([x]) => ({ data: x.data, shape: [7, 15] }) },
  permute: { shapes: [[3, 5, 7]], gpu: ([x]) => x.permute([2, 0, 1]), cpu: ([x]) => ref.permute(x, [2, 0, 1]) },
  'slice with step': {
    shapes: [[5, 7]],
    gpu: ([x]) => x.slice([1, 0], [4, 7], [1, 3]),
    cpu: ([x]) => {
      const out: number[] = [];
      for (let i = 1; i < 4; i++) for (let j = 0; j < 7; j += 3) out.push(x.data[i * 7 + j]);
      return { data: Float64Array.from(out), shape: [3, 3] };
    },
  },
  'concat axis 1': {
    shapes: [[3, 2], [3, 5]],
    gpu: ([a, b]) => T.concat([a, b], 1),
    cpu: ([a, b]) => {
      const out: number[] = [];
      for (let i = 0; i < 3; i++) out.push(...a.data.slice(i * 2, i * 2 + 2), ...b.data.slice(i * 5, i * 5 + 5));
      return { data: Float64Array.from(out), shape: [3, 7] };
    },
  },
  expand: {
    shapes: [[3, 1]],
    gpu: ([x]) => x.expand([2, 3, 4]),
    cpu: ([x]) => ref.binary(x, { data: new Float64Array(8), shape: [2, 1, 4] }, (a) => a),
  },
  'indexSelect (repeated rows)': {
    shapes: [[4, 3]],
    gpu: ([x]) => x.indexSelect(0, tensor(new Int32Array([2, 0, 2]))),
    cpu: ([x]) => ({ data: Float64Array.from([2, 0, 2].flatMap((r) => Array.from(x.data.slice(r * 3, r * 3 + 3)))), shape: [3, 3] }),
  },
  'matmul batched broadcast': {
    shapes: [[2, 3, 5], [5, 4]],
    gpu: ([a, b]) => T.matmul(a, b),
    cpu: ([a, b]) => {
      const out = new Float64Array(2 * 3 * 4);
      for (let z = 0; z < 2; z++) out.set(ref.matmul(a.data.slice(z * 15, z * 15 + 15), b.data, 3, 5, 4), z * 12);
      return { data: out, shape: [2, 3, 4] };
    },
  },
  'matmul vector·matrix': {
    shapes: [[5], [5, 3]],
    gpu: ([a, b]) => T.matmul(a, b),
    cpu: ([a, b]) => ({ data: ref.matmul(a.data, b.data, 1, 5, 3), shape: [3] }),
  },
} satisfies Record<string, GradCase>);

describe('gradients against float64 finite differences', () => {
  for (const [name, c] of Object.entries(CASES)) test(name, () => gradCheck(name, c));
});

describe('autograd semantics', () => {
  test('gradients accumulate across backward calls until zeroed', async () => {
    const x = tensor([1, 2, 3]).requireGrad();
    T.sum(T.mul(x, x)).backward();
    T.sum(T.mul(x, 3)).backward();
    expect(Array.from(await x.grad!.data())).toEqual([5, 7, 9]);
    x.grad!.dispose();
    x.grad = null;
    T.sum(x).backward();
    expect(Array.from(await x.grad!.data())).toEqual([1, 1, 1]);
  });

  test('a value used twice gets both contributions (x·x, x + x)', async () => {
    const x = tensor([2, -3]).requireGrad();
    const y = T.add(T.mul(x, x), T.add(x, x));
    T.sum(y).backward();
    expect(Array.from(await x.grad!.data())).toEqual([6, -4]);
  });

  test('detach and noGrad cut the graph', async () => {
    const x = tensor([1, 2]).requireGrad();
    expect(T.noGrad(() => T.mul(x, 2)).requiresGrad).toBe(false);
    const d = x.detach();
    expect(d.requiresGrad).toBe(false);
    const y = T.add(T.mul(x, d), 0);
    T.sum(y).backward();
    expect(Array.from(await x.grad!.data())).toEqual([1, 2]);
  });

  test('backward twice through a freed graph is a clear error unless retainGraph', async () => {
    const x = tensor([1, 2]).requireGrad();
    const y = T.sum(T.exp(x));
    y.backward({ retainGraph: true });
    y.backward();
    expect(() => y.backward()).toThrow(/backward through '\w+' a second time: its saved tensors were freed/);
    const e = Math.exp(1);
    expectClose(await values(x.grad!), [2 * e, 2 * e * e], { rtol: 1e-6, atol: 0 }, 'twice');
  });

  test('non-scalar backward needs an explicit gradient; leaves only', () => {
    const x = tensor([1, 2]).requireGrad();
    expect(() => T.mul(x, 2).backward()).toThrow(/not a scalar; pass \{ grad \}/);
    expect(() => tensor([1]).backward()).toThrow(/does not require grad/);
    expect(() => (T.mul(x, 2).requiresGrad = false)).toThrow(/only be set on leaf tensors/);
    expect(() => tensor(new Int32Array([1])).requireGrad()).toThrow(/only float32 tensors can require grad/);
  });

  test('ops whose gradient is zero almost everywhere (sign, floor) pass no gradient on', async () => {
    for (const [name, u] of Object.entries(UNARY_CASES)) {
      if (!u.noGradient) continue;
      const x = tensor([-1.5, 0.25, 2.75]).requireGrad();
      const y = u.f(x);
      expect(y.requiresGrad, name).toBe(true);
      T.sum(T.add(y, x)).backward();
      // Only the identity branch reaches x: d/dx (f(x) + x) = 0 + 1.
      expectClose(await values(x.grad!), [1, 1, 1], { rtol: 0, atol: 0 }, name);
    }
  });

  test('clone copies into its own storage and passes the gradient through', async () => {
    const x = tensor([1.5, -2, 0.25]).requireGrad();
    const c = x.clone();
    T.sum(T.mul(c, tensor([3, 5, 7]))).backward();
    expectClose(await values(x.grad!), [3, 5, 7], { rtol: 0, atol: 0 }, 'd clone');
    x.dispose();
    expectClose(await values(c), [1.5, -2, 0.25], { rtol: 0, atol: 0 }, 'clone outlives its source');
  });

  test('intermediate tensors may be disposed before backward', async () => {
    const x = tensor([0.5, -1]).requireGrad();
    const h = T.tanh(x);
    const y = T.sum(T.mul(h, h));
    h.dispose();
    y.backward();
    const t = [0.5, -1].map(Math.tanh);
    expectClose(await values(x.grad!), t.map((v) => 2 * v * (1 - v * v)), { rtol: 1e-5, atol: 1e-7 }, 'disposed intermediate');
  });
});
