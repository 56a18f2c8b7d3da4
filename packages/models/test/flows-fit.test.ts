/**
 * Flows learn known 2-D densities: test NLL against the true entropy (float64 closed form), sample
 * moments against the training data's, and a class-conditional flow whose samples land in the
 * right component.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { createRng } from '../src/data/prng.js';
import { ActNorm, Flow, evalBitsPerDim, flowLogProb, sampleFlow, splitFlowData, trainFlow, type FlowData } from '../src/flows/index.js';
import { useGpu } from '../../core/test/helpers.js';

useGpu({ poison: false });

const LOG_2PI = Math.log(2 * Math.PI);

/** Equal mixture of N((±2, 0), diag(0.5², 0.8²)) with an extra rotation-free banana-free shape. */
function mixture(n: number, seed: number): FlowData {
  const rng = createRng(seed);
  const x = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(2) === 0 ? -2 : 2;
    x[2 * i] = c + 0.5 * rng.normal();
    x[2 * i + 1] = 0.8 * rng.normal();
  }
  return { x, n, dim: 2 };
}

function mixtureLogDensity(a: number, b: number): number {
  const comp = (c: number) => -0.5 * (((a - c) / 0.5) ** 2 + (b / 0.8) ** 2) - LOG_2PI - Math.log(0.5 * 0.8);
  const l1 = comp(-2);
  const l2 = comp(2);
  const m = Math.max(l1, l2);
  return m + Math.log(Math.exp(l1 - m) + Math.exp(l2 - m)) - Math.log(2);
}

function moments(x: Float32Array, n: number): { mean: [number, number]; cov: [number, number, number] } {
  let m0 = 0;
  let m1 = 0;
  for (let i = 0; i < n; i++) {
    m0 += x[2 * i] / n;
    m1 += x[2 * i + 1] / n;
  }
  let c00 = 0;
  let c01 = 0;
  let c11 = 0;
  for (let i = 0; i < n; i++) {
    const a = x[2 * i] - m0;
    const b = x[2 * i + 1] - m1;
    c00 += (a * a) / (n - 1);
    c01 += (a * b) / (n - 1);
    c11 += (b * b) / (n - 1);
  }
  return { mean: [m0, m1], cov: [c00, c01, c11] };
}

describe('fitting 2-D densities', () => {
  const train = mixture(2000, 1);
  const test_ = mixture(3000, 2);
  let flow: Flow;

  beforeAll(async () => {
    flow = new Flow({ dim: 2, coupling: 'affine', layers: 6, hidden: [32, 32], scaleBound: 2, seed: 5 });
    await trainFlow(flow, train, { steps: 450, batchSize: 256, lr: 5e-3, seed: 6, label: null, warmup: 20, finalLrFraction: 0.1 });
  });

  test('test NLL of a two-component mixture is within 0.12 nats of the true entropy', async () => {
    const lp = await flowLogProb(flow, test_);
    let nll = 0;
    let entropy = 0;
    for (let i = 0; i < test_.n; i++) {
      nll -= lp[i] / test_.n;
      entropy -= mixtureLogDensity(test_.x[2 * i], test_.x[2 * i + 1]) / test_.n;
    }
    // Entropy ≈ 2.58 nats; a single Gaussian fit (variance 4.25 along x) sits ≈ 0.6 nats above it.
    console.log(`mixture: flow test NLL ${nll.toFixed(4)} nats, true entropy ${entropy.toFixed(4)}`);
    expect(nll - entropy).toBeLessThan(0.12);
  });

  test('samples have the training mean (±0.1) and covariance (±12% relative, cross term ±0.1)', async () => {
    const n = 4000;
    const s = moments(await sampleFlow(flow, n, { seed: 7 }), n);
    const t = moments(train.x, train.n);
    console.log(`moments: samples ${JSON.stringify(s)}, training data ${JSON.stringify(t)}`);
    expect(Math.abs(s.mean[0] - t.mean[0])).toBeLessThan(0.1);
    expect(Math.abs(s.mean[1] - t.mean[1])).toBeLessThan(0.1);
    expect(Math.abs(s.cov[0] / t.cov[0] - 1)).toBeLessThan(0.12);
    expect(Math.abs(s.cov[2] / t.cov[2] - 1)).toBeLessThan(0.12);
    expect(Math.abs(s.cov[1] - t.cov[1])).toBeLessThan(0.1);
  });
});

describe('class-conditional flow', () => {
  const centres: [number, number][] = [
    [-3, 0],
    [3, 0],
    [0, 3],
  ];

  test('samples of each class land in its component (>= 95% nearest to its centre)', async () => {
    const rng = createRng(11);
    const n = 1500;
    const x = new Float32Array(2 * n);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = rng.int(3);
      x[2 * i] = centres[labels[i]][0] + 0.4 * rng.normal();
      x[2 * i + 1] = centres[labels[i]][1] + 0.4 * rng.normal();
    }
    const flow = new Flow({ dim: 2, coupling: 'affine', layers: 4, hidden: [32, 32], scaleBound: 2, condition: { numClasses: 3, embedding: 4 }, seed: 12 });
    await trainFlow(flow, { x, n, dim: 2, labels }, { steps: 200, batchSize: 256, lr: 5e-3, seed: 13, label: null, warmup: 20 });
    const m = 300;
    const want = Int32Array.from({ length: 3 * m }, (_, i) => Math.floor(i / m));
    const s = await sampleFlow(flow, 3 * m, { seed: 14, labels: want });
    for (let c = 0; c < 3; c++) {
      let hits = 0;
      for (let i = c * m; i < (c + 1) * m; i++) {
        const d = centres.map(([a, b]) => (s[2 * i] - a) ** 2 + (s[2 * i + 1] - b) ** 2);
        if (d.indexOf(Math.min(...d)) === c) hits++;
      }
      expect(hits / m, `class ${c}`).toBeGreaterThanOrEqual(0.95);
    }
    flow.dispose();
  });
});

describe('early stopping', () => {
  test('splitFlowData: a seeded split of the rows (with their labels) into disjoint parts that cover them', () => {
    const n = 10;
    const data: FlowData = { x: Float32Array.from({ length: 2 * n }, (_, i) => i), n, dim: 2, labels: Int32Array.from({ length: n }, (_, i) => 100 + i) };
    const { train, validation } = splitFlowData(data, 0.3, 4);
    expect([train.n, validation.n]).toEqual([7, 3]);
    const rowsOf = (d: FlowData) => Array.from({ length: d.n }, (_, i) => d.x[2 * i] / 2);
    const all = [...rowsOf(train), ...rowsOf(validation)];
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    for (const d of [train, validation]) rowsOf(d).forEach((r, i) => {
      expect(d.x[2 * i + 1]).toBe(2 * r + 1);
      expect(d.labels![i]).toBe(100 + r);
    });
    expect(rowsOf(splitFlowData(data, 0.3, 4).validation)).toEqual(rowsOf(validation));
    expect(() => splitFlowData(data, 0.01, 4)).toThrow(/splitFlowData: a validation fraction of 0.01 of 10 rows leaves 10 to train on and 0 to validate/);
  });

  test('on 40 points the validation NLL turns up; training stops `patience` checks after its minimum and keeps those weights', async () => {
    const { train, validation } = splitFlowData(mixture(60, 21), 1 / 3, 22);
    const flow = new Flow({ dim: 2, coupling: 'affine', layers: 6, hidden: [64, 64], scaleBound: 2, seed: 23 });
    const patience = 4;
    const r = await trainFlow(flow, train, { steps: 3000, batchSize: 40, lr: 1e-2, seed: 24, label: null, validation, validateEvery: 20, patience });
    const v = r.validation!;
    // It overfits (the point of stopping): the last check is worse than the best, and it stopped before the cap.
    expect(r.steps).toBeLessThan(3000);
    expect(v.history.at(-1)![1]).toBeGreaterThan(v.best);
    expect(r.steps).toBe(v.bestStep + patience * 20);
    expect(v.history.map(([s]) => s)).toEqual(Array.from({ length: r.steps / 20 }, (_, i) => 20 * (i + 1)));
    expect(v.best).toBe(Math.min(...v.history.map(([, x]) => x)));
    expect(r.losses.at(-1)![0]).toBe(r.steps);
    // The weights kept are those of the best check: the same evaluation gives the same number.
    const again = await evalBitsPerDim(flow, validation, { seed: 0 });
    expect(Math.abs(again.natsPerDim - v.best)).toBeLessThan(1e-6);

    // Fine-tuning the kept weights on the same 40 points at 5x the learning rate only overfits more.
    // With a check at step 0 those starting weights are a candidate, and they are the ones kept, bit for bit.
    const start = await Promise.all(flow.trainableParameters().map((p) => p.data()));
    const more = await trainFlow(flow, train, { steps: 3000, batchSize: 40, lr: 5e-2, seed: 25, label: null, validation, validateEvery: 20, patience, validateAtStart: true });
    const m = more.validation!;
    expect(m.history[0][0]).toBe(0);
    expect(Math.abs(m.history[0][1] - v.best)).toBeLessThan(1e-6); // the step-0 check measures the starting weights
    expect(m.bestStep).toBe(0);
    expect(more.steps).toBe(patience * 20);
    const kept = await Promise.all(flow.trainableParameters().map((p) => p.data()));
    kept.forEach((k, i) => expect(k, `parameter ${i}`).toEqual(start[i]));
    flow.dispose();
  });

  test('with an EMA, the checks measure the averaged weights, and the flow keeps those of the best check', async () => {
    const { train, validation } = splitFlowData(mixture(60, 21), 1 / 3, 22);
    const make = () => new Flow({ dim: 2, coupling: 'affine', layers: 4, hidden: [32, 32], scaleBound: 2, seed: 26 });
    // A constant learning rate (no warmup or decay), so a shorter run follows the same trajectory.
    const settings = { batchSize: 40, lr: 1e-2, seed: 27, label: null, emaDecay: 0.95 };
    const flow = make();
    const r = await trainFlow(flow, train, { ...settings, steps: 60, validation, validateEvery: 10 });
    r.ema!.dispose();
    const v = r.validation!;
    // Reference: the same run without checks, stopped at the kept step, its average copied in.
    const reference = make();
    const plain = await trainFlow(reference, train, { ...settings, steps: v.bestStep });
    const raw = (await evalBitsPerDim(reference, validation, { seed: 0 })).natsPerDim;
    plain.ema!.copyTo(reference);
    plain.ema!.dispose();
    const averaged = (await evalBitsPerDim(reference, validation, { seed: 0 })).natsPerDim;
    expect(Math.abs(v.best - averaged)).toBeLessThan(1e-6);
    expect(Math.abs(raw - averaged)).toBeGreaterThan(1e-4); // the checks measured the average, not the raw weights
    const [kept, expected] = await Promise.all([flow, reference].map((f) => Promise.all(f.trainableParameters().map((p) => p.data()))));
    kept.forEach((k, i) => expect(k, `parameter ${i}`).toEqual(expected[i]));
    flow.dispose();
    reference.dispose();
  });
});

describe('ActNorm init from the data (actnormInit)', () => {
  test('sets the ActNorm layers from every row, not the first batch, each variance shrunk toward the pooled one (float64 reference)', async () => {
    const n = 50;
    const prior = 7;
    const data = mixture(n, 31);
    const flow = new Flow({ dim: 2, coupling: 'affine', layers: 2, hidden: [8], actnorm: true, seed: 32 });
    // lr 1e-12: the one Adam step moves no parameter by more than about 1e-12, so what is read back is the init.
    await trainFlow(flow, data, { steps: 1, batchSize: 4, lr: 1e-12, seed: 33, label: null, actnormInit: { images: 1000, prior } });
    const col = (j: number) => Array.from({ length: n }, (_, i) => data.x[2 * i + j]);
    const m = [0, 1].map((j) => col(j).reduce((a, v) => a + v, 0) / n);
    const v = [0, 1].map((j) => col(j).reduce((a, u) => a + (u - m[j]) ** 2, 0) / n);
    const vBar = (v[0] + v[1]) / 2;
    const logScale = v.map((vj) => -0.5 * Math.log((n * vj + prior * vBar) / (n + prior) + 1e-6));
    const norm = flow.transforms.layers.at(0) as ActNorm;
    const [bias, scale] = await Promise.all([norm.bias.data(), norm.log_scale.data()]);
    // float32 sums of 50 values of size <= 4: ~1e-6 relative error; 1e-4 leaves room.
    bias.forEach((b, j) => expect(Math.abs(b + m[j]), `bias ${j}`).toBeLessThan(1e-4));
    scale.forEach((s, j) => expect(Math.abs(s - logScale[j]), `log_scale ${j}`).toBeLessThan(1e-4));
    // The prior is visible: the per-feature (Glow) log-scales differ by more than the tolerance.
    v.forEach((vj, j) => expect(Math.abs(-0.5 * Math.log(vj + 1e-6) - logScale[j])).toBeGreaterThan(1e-2));
    flow.dispose();
  });

  test('errors: a flow without ActNorm layers, and fewer than one image', async () => {
    const data = mixture(10, 34);
    const plain = new Flow({ dim: 2, coupling: 'affine', layers: 2, hidden: [8], seed: 35 });
    const settings = { steps: 1, batchSize: 4, lr: 1e-3, label: null };
    await expect(trainFlow(plain, data, { ...settings, actnormInit: { images: 10, prior: 1 } })).rejects.toThrow('Flow.initActNorm: the flow has no ActNorm layers (config.actnorm is off)');
    await expect(trainFlow(plain, data, { ...settings, actnormInit: { images: 0, prior: 1 } })).rejects.toThrow('trainFlow: actnormInit.images must be a whole number >= 1, got 0');
    plain.dispose();
  });
});
