/**
 * Image metrics with an explicit pixel scale: W1 in [0, 1] units whatever the storage range,
 * per-class W1 on label-matched sets, label-matched floor rows, and class fidelity of a
 * classifier trained with the engine.
 */
import { describe, expect, it } from 'vitest';
import { useGpu } from '../../core/test/helpers.js';
import { createRng, shuffleInPlace } from '../src/data/prng.js';
import { classFidelity, imageW1, labelMatchedRows, perClassW1, trainClassifier, w1Exact } from '../src/metrics/index.js';

useGpu({ poison: false });

function images(n: number, dim: number, seed: number, lo: number, hi: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n * dim }, () => lo + (hi - lo) * rng.next());
}

describe('image metrics', () => {
  it('imageW1 reports the [0, 1] scale for images stored in [-1, 1] and in [0, 255]', async () => {
    const n = 23;
    const dim = 17;
    const a = images(n, dim, 1, 0, 1);
    const b = images(n, dim, 2, 0, 1);
    const ref = w1Exact(a, b, n, n, dim); // float64 reference on [0, 1] pixels
    const signed = (x: Float32Array) => x.map((v) => 2 * v - 1);
    const bytes = (x: Float32Array) => x.map((v) => 255 * v);
    // Float32 distances on the GPU against float64 here: relative error ~1e-5 of a mean cost ~2.
    expect(await imageW1(a, b, { dim, pixelRange: [0, 1] })).toBeCloseTo(ref, 4);
    expect(await imageW1(signed(a), signed(b), { dim, pixelRange: [-1, 1] })).toBeCloseTo(ref, 4);
    expect(await imageW1(bytes(a), bytes(b), { dim, pixelRange: [0, 255] })).toBeCloseTo(ref, 4);
    await expect(imageW1(a, b, { dim, pixelRange: [1, 1] })).rejects.toThrow(/low < high, got \[1, 1\]/);
    await expect(imageW1(a, b.subarray(1), { dim, pixelRange: [0, 1] })).rejects.toThrow(/not whole images of 17 pixels/);
  });

  it('perClassW1 scores each class on its own rows; unmatched labels are refused', async () => {
    const dim = 9;
    const labels = Int32Array.from([0, 1, 0, 2, 1, 0, 2, 1, 2, 0, 1]);
    const a = images(labels.length, dim, 3, -1, 1);
    const b = images(labels.length, dim, 4, -1, 1);
    const got = await perClassW1(a, labels, b, labels, { dim, pixelRange: [-1, 1] });
    for (const c of [0, 1, 2]) {
      const rows = [...labels.keys()].filter((i) => labels[i] === c);
      const pick = (x: Float32Array) => Float32Array.from(rows.flatMap((r) => [...x.subarray(r * dim, (r + 1) * dim)]));
      expect(got[c]).toBeCloseTo(w1Exact(pick(a), pick(b), rows.length, rows.length, dim) / 2, 4);
    }
    await expect(perClassW1(a, labels, b, labels.map((c) => (c === 2 ? 1 : c)), { dim, pixelRange: [-1, 1] })).rejects.toThrow(/class 1 has 4 images in one set and 7 in the other/);
  });

  it('labelMatchedRows draws distinct pool rows with exactly the wanted labels', () => {
    const pool = Int32Array.from([2, 0, 1, 1, 0, 2, 0, 1]);
    const wanted = Int32Array.from([1, 0, 1, 2, 0]);
    const rows = labelMatchedRows(pool, wanted, (r) => shuffleInPlace(r, createRng(5)));
    expect(Array.from(rows, (r) => pool[r])).toEqual(Array.from(wanted));
    expect(new Set(rows).size).toBe(rows.length);
    expect(() => labelMatchedRows(pool, Int32Array.from([2, 2, 2]), (r) => r)).toThrow(/2 images of class 2, fewer than the 3 wanted/);
  });

  it('a classifier trained on separable classes reports its held-out accuracy and scores generated sets', async () => {
    // Three classes of 6x6 images, each a bright square in a different corner plus noise.
    const rng = createRng(7);
    const n = 150;
    const d = 36;
    const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
    const x = new Float32Array(n * d);
    labels.forEach((c, i) => {
      for (let p = 0; p < d; p++) {
        const [r, col] = [Math.floor(p / 6), p % 6];
        const on = c === 0 ? r < 3 && col < 3 : c === 1 ? r >= 3 && col >= 3 : r < 3 && col >= 3;
        x[i * d + p] = (on ? 0.8 : -0.8) + 0.2 * rng.normal();
      }
    });
    const clf = await trainClassifier({ images: x, labels, n, channels: 1, height: 6, width: 6 }, { steps: 60, batchSize: 32, lr: 1e-2, hidden: 16 });
    expect(clf.heldOut).toBe(23); // ceil(0.15 * 150)
    expect(clf.heldOutAccuracy).toBe(1);
    // "Generated" images: the real ones with class 2's labelled as class 0 -> class 0 all right,
    // class 2 all wrong (they look like 2s): accuracy 2/3 overall.
    const claimed = labels.map((c) => (c === 2 ? 0 : c));
    const f = await classFidelity(clf, x, claimed);
    expect(f.perClass).toEqual({ 0: 0.5, 1: 1 });
    expect(f.accuracy).toBeCloseTo(2 / 3, 12);
    clf.dispose();
  });
});
