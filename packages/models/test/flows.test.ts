/**
 * Flow layers against independent references: exact inverses, forward/inverse log-dets that
 * cancel, and log-dets equal to log|det J| of a central-difference Jacobian (float64 LU on the
 * CPU), for every transform and for whole conditional and unconditional models.
 */
import { describe, expect, test } from 'vitest';
import { assign, noGrad, rand, tensor, tidy, type Module, type Tensor } from '@transfuse/core';
import {
  ActNorm,
  AdditiveCoupling,
  AffineCoupling,
  DiagonalScaling,
  Flow,
  FlowSequence,
  LogitTransform,
  Permutation,
  flowPreset,
  maskIndices,
  type FlowCondition,
  type Transform,
} from '../src/flows/index.js';
import { expectClose, seededRandom, useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

/** Overwrites every parameter with U(-scale, scale) so zero-initialised conditioners do something. */
function randomize(m: Module, seed: number, scale = 0.4): void {
  noGrad(() => m.parameters().forEach((p, i) => tidy(() => assign(p, rand(p.shape, { low: -scale, high: scale, seed: seed * 1000 + i })))));
}

/** log|det A| of a row-major n x n matrix by partial-pivoting LU in float64. */
function logAbsDet(a: Float64Array, n: number): number {
  const m = Float64Array.from(a);
  let total = 0;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    if (p !== c) for (let k = 0; k < n; k++) [m[c * n + k], m[p * n + k]] = [m[p * n + k], m[c * n + k]];
    const piv = m[c * n + c];
    total += Math.log(Math.abs(piv));
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c] / piv;
      for (let k = c; k < n; k++) m[r * n + k] -= f * m[c * n + k];
    }
  }
  return total;
}

type Fn = (x: Tensor) => { out: Tensor; logAbsDet: Tensor };

/**
 * Checks fn at P points of dimension d: inverse round trip, log-dets cancelling, and the log-det
 * against a central-difference Jacobian (step h, all 2d+1 probes of all points in one batch).
 */
async function checkBijection(fwd: Fn, inv: Fn, x0: Float32Array, d: number, o: { h?: number; jacTol?: number; lo?: number } = {}): Promise<void> {
  const P = x0.length / d;
  const h = o.h ?? 1e-2;
  const x = tensor(x0, [P, d]);
  const f = fwd(x);
  const b = inv(f.out);
  expectClose(await b.out.data(), x0, { rtol: 1e-5, atol: 1e-5 }, 'inverse(forward(x))');
  const ldF = await f.logAbsDet.data();
  const ldI = await b.logAbsDet.data();
  expectClose(Array.from(ldF, (v, i) => v + ldI[i]), new Float64Array(P), { rtol: 0, atol: 1e-4 }, 'forward + inverse log-dets');
  // Probes: rows p·(2d) + 2j ± : x_p ± h e_j.
  const probes = new Float32Array(P * 2 * d * d);
  for (let p = 0; p < P; p++) {
    for (let j = 0; j < d; j++) {
      for (let s = 0; s < 2; s++) {
        const row = (p * 2 * d + 2 * j + s) * d;
        probes.set(x0.subarray(p * d, (p + 1) * d), row);
        probes[row + j] += s === 0 ? h : -h;
      }
    }
  }
  const y = await fwd(tensor(probes, [P * 2 * d, d])).out.data();
  for (let p = 0; p < P; p++) {
    const J = new Float64Array(d * d);
    for (let j = 0; j < d; j++) {
      const plus = (p * 2 * d + 2 * j) * d;
      const minus = plus + d;
      for (let i = 0; i < d; i++) J[i * d + j] = (y[plus + i] - y[minus + i]) / (2 * h);
    }
    expect(Math.abs(ldF[p] - logAbsDet(J, d)), `log-det at point ${p}: layer ${ldF[p]}, Jacobian ${logAbsDet(J, d)}`).toBeLessThan(o.jacTol ?? 5e-3);
  }
  for (const t of [x, f.out, f.logAbsDet, b.out, b.logAbsDet]) t.dispose();
}

const points = (n: number, seed: number, lo = -1.5, hi = 1.5) => {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => r(lo, hi));
};

const asFns = (t: Transform, ctx?: Tensor): [Fn, Fn] => [
  (x) => {
    const r = t.forward(x, ctx?.shape[0] === x.shape[0] ? ctx : ctx && tensor(repeatRows(ctx, x.shape[0]), [x.shape[0], ctx.shape[1]]));
    return { out: r.y, logAbsDet: r.logAbsDet };
  },
  (y) => {
    const r = t.inverse(y, ctx);
    return { out: r.x, logAbsDet: r.logAbsDet };
  },
];

// Probe batches repeat each point's context row 2d times (filled in by the caller via ctxRows).
let ctxRows: Float32Array | null = null;
function repeatRows(ctx: Tensor, rows: number): Float32Array {
  if (!ctxRows) throw new Error('context rows not set');
  const c = ctx.shape[1];
  const P = ctx.shape[0];
  const per = rows / P;
  const out = new Float32Array(rows * c);
  for (let r = 0; r < rows; r++) out.set(ctxRows.subarray(Math.floor(r / per) * c, (Math.floor(r / per) + 1) * c), r * c);
  return out;
}

describe('flow transforms', () => {
  const d = 6;
  const P = 3;

  test('masks: half, checkerboard and channel partitions are complementary', () => {
    expect(maskIndices({ kind: 'half', parity: 0 }, 6)).toEqual({ keep: [0, 1, 2], change: [3, 4, 5] });
    expect(maskIndices({ kind: 'half', parity: 1 }, 6)).toEqual({ keep: [3, 4, 5], change: [0, 1, 2] });
    expect(maskIndices({ kind: 'checkerboard', height: 2, width: 3, parity: 0 }, 6)).toEqual({ keep: [0, 2, 4], change: [1, 3, 5] });
    expect(maskIndices({ kind: 'channel', channels: 2, height: 1, width: 3, parity: 1 }, 6)).toEqual({ keep: [3, 4, 5], change: [0, 1, 2] });
    expect(() => maskIndices({ kind: 'checkerboard', height: 2, width: 2, parity: 0 }, 6)).toThrow(/does not cover dim 6/);
  });

  const cases: [string, () => Transform][] = [
    ['additive coupling, half mask', () => new AdditiveCoupling(d, { kind: 'half', parity: 0 }, { hidden: [16, 16], seed: 1 })],
    ['additive coupling, checkerboard mask', () => new AdditiveCoupling(d, { kind: 'checkerboard', height: 2, width: 3, parity: 1 }, { hidden: [16], seed: 2 })],
    ['affine coupling (tanh scale), half mask parity 1', () => new AffineCoupling(d, { kind: 'half', parity: 1 }, { hidden: [16, 16], seed: 3 })],
    ['affine coupling (soft clamp 2), checkerboard mask', () => new AffineCoupling(d, { kind: 'checkerboard', height: 2, width: 3, parity: 0 }, { hidden: [16], scaleBound: 2, seed: 4 })],
    ['diagonal scaling', () => new DiagonalScaling(d)],
    ['reverse permutation', () => new Permutation(d, 'reverse')],
    ['random permutation', () => new Permutation(d, { seed: 7 })],
    ['ActNorm', () => new ActNorm(d)],
  ];
  for (const [name, make] of cases) {
    test(`${name}: inverse, log-det cancellation, log-det = log|det J|`, async () => {
      const t = make();
      randomize(t, 11);
      if (t instanceof ActNorm) t.markInitialized();
      await checkBijection(...asFns(t), points(P * d, 5), d);
    });
  }

  test('logit transform on (0, 1): inverse and Jacobian log-det', async () => {
    const t = new LogitTransform(d, 0.05);
    await checkBijection(...asFns(t), points(P * d, 6, 0.1, 0.9), d, { h: 1e-3, jacTol: 2e-2 });
  });

  test('conditional affine coupling: the context changes the map, log-det still exact', async () => {
    const t = new AffineCoupling(d, { kind: 'half', parity: 0 }, { hidden: [16], contextDim: 3, seed: 9 });
    randomize(t, 12);
    ctxRows = points(P * 3, 13);
    const ctx = tensor(ctxRows, [P, 3]);
    await checkBijection(...asFns(t, ctx), points(P * d, 14), d);
    const other = tensor(points(P * 3, 15), [P, 3]);
    const x = tensor(points(P * d, 14), [P, d]);
    const a = await t.forward(x, ctx).y.data();
    const b = await t.forward(x, other).y.data();
    expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-3);
    expect(() => t.forward(x)).toThrow(/expected a context \[3, 3\], got none/);
  });

  test('ActNorm: the first training batch gets zero mean and unit variance per feature', async () => {
    const t = new ActNorm(4);
    const x0 = Float32Array.from({ length: 64 * 4 }, (_, i) => 3 + (i % 4) * 2 + Math.sin(i * 1.7) * (1 + (i % 4)));
    const y = await t.forward(tensor(x0, [64, 4])).y.data();
    for (let j = 0; j < 4; j++) {
      const col = Array.from({ length: 64 }, (_, r) => y[r * 4 + j]);
      const m = col.reduce((s, v) => s + v, 0) / 64;
      const v = col.reduce((s, u) => s + (u - m) ** 2, 0) / 64;
      expect(Math.abs(m)).toBeLessThan(1e-5);
      expect(Math.abs(v - 1)).toBeLessThan(1e-4);
    }
    expect(t.initialized).toBe(true);
  });

  test('ActNorm with initPrior: each variance shrunk toward the pooled one, so a feature the batch never varied gets a finite scale (float64 reference)', async () => {
    const n = 37;
    const d = 4;
    const prior = 11;
    // Feature 0 is blank (as a pixel no image of a small batch inked); the others vary.
    const x0 = Float32Array.from({ length: n * d }, (_, i) => (i % d === 0 ? 0.25 : 1 + (i % d) + Math.sin(i * 1.3) * (i % d)));
    const t = new ActNorm(d);
    t.initPrior = prior;
    t.forward(tensor(x0, [n, d]));
    const col = (j: number) => Array.from({ length: n }, (_, r) => x0[r * d + j]);
    const m = Array.from({ length: d }, (_, j) => col(j).reduce((a, v) => a + v, 0) / n);
    const v = Array.from({ length: d }, (_, j) => col(j).reduce((a, u) => a + (u - m[j]) ** 2, 0) / n);
    const vBar = v.reduce((a, x) => a + x, 0) / d;
    const logScale = v.map((vj) => -0.5 * Math.log((n * vj + prior * vBar) / (n + prior) + 1e-6));
    const [bias, scale] = await Promise.all([t.bias.data(), t.log_scale.data()]);
    // float32 sums of 37 values of size <= 4: ~1e-6 relative error; 1e-4 leaves room.
    bias.forEach((b, j) => expect(Math.abs(b + m[j]), `bias ${j}`).toBeLessThan(1e-4));
    scale.forEach((s, j) => expect(Math.abs(s - logScale[j]), `log_scale ${j}`).toBeLessThan(1e-4));
    // Glow's init would scale the blank feature by 1/sqrt(1e-6) = 1000 (log 6.9).
    expect(scale[0]).toBeLessThan(1);
  });

  test('Flow.initActNorm: errors name a flow without ActNorm and a bad prior; layers already set are left alone', async () => {
    const x = tensor(points(8 * 4, 15), [8, 4]);
    const plain = new Flow({ dim: 4, coupling: 'affine', layers: 2, hidden: [8], seed: 3 });
    expect(() => plain.initActNorm(x, undefined, 0)).toThrow('Flow.initActNorm: the flow has no ActNorm layers (config.actnorm is off)');
    const flow = new Flow({ dim: 4, coupling: 'affine', layers: 2, hidden: [8], actnorm: true, seed: 3 });
    expect(() => flow.initActNorm(x, undefined, -1)).toThrow('Flow.initActNorm: prior must be a finite number >= 0, got -1');
    flow.initActNorm(x, undefined, 4);
    const norm = flow.transforms.layers.at(0) as ActNorm;
    const before = await norm.bias.data();
    flow.initActNorm(tensor(points(8 * 4, 16), [8, 4]), undefined, 4);
    expect(await norm.bias.data()).toEqual(before);
    plain.dispose();
    flow.dispose();
  });
});

describe('flow models', () => {
  test('a conditional flow (learned h, task condition, ActNorm, permutations, base flow) is an exact bijection', async () => {
    const d = 4;
    const flow = new Flow({
      dim: d,
      coupling: 'affine',
      layers: 3,
      hidden: [16],
      permutation: 'random',
      actnorm: true,
      condition: { numClasses: 3, embedding: 2, taskDim: 1 },
      base: { layers: 2, hidden: [8] },
      seed: 3,
    });
    randomize(flow, 21, 0.3);
    for (const [, m] of flow.namedModules()) if (m instanceof ActNorm) m.markInitialized();
    const P = 3;
    const labels = Int32Array.from([0, 2, 1]);
    const task = points(P, 22);
    const cond = (rows: number): FlowCondition => {
      const per = rows / P;
      return { labels: tensor(Int32Array.from({ length: rows }, (_, r) => labels[Math.floor(r / per)])), task: tensor(Float32Array.from({ length: rows }, (_, r) => task[Math.floor(r / per)]), [rows, 1]) };
    };
    await checkBijection(
      (x) => {
        const r = flow.forward(x, cond(x.shape[0]));
        return { out: r.z, logAbsDet: r.logAbsDet };
      },
      (z) => {
        const r = flow.inverse(z, cond(z.shape[0]));
        return { out: r.x, logAbsDet: r.logAbsDet };
      },
      points(P * d, 23),
      d,
    );
    // The shared embedding is one module, read by every coupling: one embedding table in the state dict.
    const names = [...flow.stateDict().keys()];
    expect(names.filter((n) => n.includes('embedding'))).toEqual(['condition_embedding.weight']);
    // The base flow is a bijection too, and logProb = base log-density + log-det.
    await checkBijection(
      (u) => {
        const r = (flow.base as unknown as { transforms: FlowSequence }).transforms.forward(u);
        return { out: r.y, logAbsDet: r.logAbsDet };
      },
      (e) => {
        const r = (flow.base as unknown as { transforms: FlowSequence }).transforms.inverse(e);
        return { out: r.x, logAbsDet: r.logAbsDet };
      },
      points(P * d, 24),
      d,
    );
    flow.dispose();
  });

  test('logProb of a flow with a diagonal base equals the closed form of the Gaussian it pushes forward', async () => {
    // One DiagonalScaling on a DiagonalGaussian base: x = z·exp(-a), z ~ N(loc, σ²) → x ~ N(loc·e^-a, σ²e^-2a).
    const flow = new Flow({ dim: 2, coupling: 'affine', layers: 1, hidden: [4], finalScaling: true, base: 'diagonal', seed: 1 });
    noGrad(() => {
      const sd = flow.stateDict();
      assign(sd.get('transforms.layers.1.log_scale')!, tensor(Float32Array.from([0.3, -0.2])));
      assign(sd.get('base.loc')!, tensor(Float32Array.from([0.5, -1])));
      assign(sd.get('base.log_scale')!, tensor(Float32Array.from([-0.4, 0.1])));
    });
    const xs = Float32Array.from([0.1, 0.2, -1, 2, 3, -0.5]);
    const lp = await flow.logProb(tensor(xs, [3, 2])).data();
    const expected = [0, 1, 2].map((r) => {
      let s = 0;
      for (let j = 0; j < 2; j++) {
        const a = [0.3, -0.2][j];
        const mu = [0.5, -1][j] * Math.exp(-a);
        const sigma = Math.exp([-0.4, 0.1][j] - a);
        s += -0.5 * ((xs[r * 2 + j] - mu) / sigma) ** 2 - Math.log(sigma) - 0.5 * Math.log(2 * Math.PI);
      }
      return s;
    });
    expectClose(lp, expected, { rtol: 1e-5, atol: 1e-5 }, 'logProb');
    flow.dispose();
  });

  test('a new flow is the identity (zero-initialised conditioner outputs)', async () => {
    const flow = new Flow({ ...flowPreset('realnvp-cond-emb'), dim: 8, hidden: [16], seed: 2 });
    const x0 = points(5 * 8, 31);
    const r = flow.forward(tensor(x0, [5, 8]), { labels: tensor(Int32Array.from([0, 1, 2, 3, 9])) });
    expect(Array.from(await r.z.data())).toEqual(Array.from(x0));
    expect(Array.from(await r.logAbsDet.data())).toEqual([0, 0, 0, 0, 0]);
    flow.dispose();
  });

  test('baseline presets have the PyTorch baseline parameter counts', () => {
    const count = (name: string) => {
      const f = new Flow(flowPreset(name, { seed: 0 }));
      const n = f.numParameters();
      f.dispose();
      return n;
    };
    expect(count('realnvp')).toBe(3_680_256);
    expect(count('nice')).toBe(3_155_200);
    expect(count('realnvp-cond')).toBe(3_721_216);
    expect(count('realnvp-cond-emb')).toBe(3_721_216 + 100);
    // 3 additive couplings of 394,368 + a diagonal Gaussian base (256 + 256).
    expect(count('three-layer')).toBe(3 * 394_368 + 512);
  });

  test('ActNorm initialisation survives a state-dict round trip; loading marks it initialised', async () => {
    const config = { dim: 3, coupling: 'affine' as const, layers: 2, hidden: [8], actnorm: true, seed: 4 };
    const a = new Flow(config);
    a.train();
    a.forward(tensor(Float32Array.from({ length: 30 }, (_, i) => 5 + Math.cos(i) * 3), [10, 3]));
    const b = new Flow(config);
    b.loadStateDict(a.stateDict());
    const norms = b.transforms.layers.at(0) as ActNorm;
    expect(norms.initialized).toBe(true);
    // A further training batch must not re-initialise the loaded statistics.
    b.train();
    const before = Array.from(await norms.bias.data());
    b.forward(tensor(Float32Array.from({ length: 30 }, (_, i) => i), [10, 3]));
    expect(Array.from(await norms.bias.data())).toEqual(before);
    expect(before.some((v) => v !== 0)).toBe(true);
    a.dispose();
    b.dispose();
  });

  test('errors name the module and the shapes', () => {
    const flow = new Flow({ dim: 4, coupling: 'additive', layers: 1, hidden: [4], condition: { numClasses: 2, embedding: 'onehot' } });
    expect(() => flow.forward(tensor(new Float32Array(8), [2, 4]))).toThrow(/conditional \(2 classes\); pass \{ labels \}/);
    expect(() => flow.forward(tensor(new Float32Array(6), [2, 3]), { labels: tensor(Int32Array.from([0, 1])) })).toThrow(/AdditiveCoupling: expected input \[B, 4\], got \[2, 3\]/);
    expect(() => flowPreset('glow')).toThrow(/unknown flow preset 'glow'/);
    flow.dispose();
  });
});
