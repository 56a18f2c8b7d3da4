/**
 * Class fidelity of a conditional generator: a small classifier, trained with the engine on real
 * target images (its own held-out accuracy reported), labels the generated images of each class;
 * the score is the share it assigns to the class they were generated for. W1 rewards thin smooth
 * strokes; this asks whether a sample of class c looks like a c.
 */
import { Adam, argmax, crossEntropy, Linear, noGrad, ReLU, Sequential, tensor, tidy } from '@transfuse/core';
import { epochBatches, gatherRows } from '../data/batches.js';
import { stratifiedSplit } from '../data/split.js';
import type { ImageSet } from '../data/image-set.js';

export interface ClassifierOptions {
  steps: number;
  batchSize: number;
  lr: number;
  hidden?: number;
  /** Share of the images held out to report the classifier's own accuracy (stratified). */
  heldOutFraction?: number;
  seed?: number;
}

export interface DigitClassifier {
  /** Accuracy on the held-out real images (never trained on). */
  heldOutAccuracy: number;
  heldOut: number;
  numClasses: number;
  /** Predicted class of each image (rows of `images`, same layout as the training set). */
  predict(images: Float32Array): Promise<Int32Array>;
  dispose(): void;
}

/** Trains an MLP classifier (pixels -> hidden ReLU -> classes) with Adam and cross-entropy. */
export async function trainClassifier(set: ImageSet, o: ClassifierOptions): Promise<DigitClassifier> {
  if (!set.labels) throw new Error('trainClassifier: the images have no labels');
  const d = set.channels * set.height * set.width;
  const numClasses = Math.max(...set.labels) + 1;
  const seed = o.seed ?? 0;
  const split = stratifiedSplit(set.labels, o.heldOutFraction ?? 0.15, seed);
  const trainX = gatherRows(set.images, d, split.train);
  const trainY = Int32Array.from(split.train, (i) => set.labels![i]);
  const model = new Sequential(new Linear(d, o.hidden ?? 256, { seed: seed + 1 }), new ReLU(), new Linear(o.hidden ?? 256, numClasses, { seed: seed + 2 }));
  const opt = new Adam(model.parameters(), { lr: o.lr });
  const next = epochBatches(split.train.length, Math.min(o.batchSize, split.train.length), seed);
  for (let step = 0; step < o.steps; step++) {
    const rows = next();
    const loss = tidy(() => {
      const l = crossEntropy(model.forward(tensor(gatherRows(trainX, d, rows), [rows.length, d])), tensor(Int32Array.from(rows, (r) => trainY[r])));
      l.backward();
      opt.step();
      opt.zeroGrad();
      return l;
    });
    loss.dispose();
  }
  model.eval();
  const predict = async (images: Float32Array): Promise<Int32Array> => {
    if (images.length % d !== 0) throw new Error(`classifier: ${images.length} values are not whole images of ${d} pixels`);
    const n = images.length / d;
    const out = new Int32Array(n);
    for (let start = 0; start < n; start += 512) {
      const b = Math.min(512, n - start);
      const p = noGrad(() => tidy(() => argmax(model.forward(tensor(images.subarray(start * d, (start + b) * d), [b, d])), 1)));
      out.set(Int32Array.from(await p.data()), start);
      p.dispose();
    }
    return out;
  };
  const heldOutLabels = Int32Array.from(split.test, (i) => set.labels![i]);
  const predicted = await predict(gatherRows(set.images, d, split.test));
  const heldOutAccuracy = predicted.reduce((s, p, i) => s + (p === heldOutLabels[i] ? 1 : 0), 0) / split.test.length;
  return { heldOutAccuracy, heldOut: split.test.length, numClasses, predict, dispose: () => model.dispose() };
}

export interface ClassFidelity {
  /** Share of all generated images classified as the class they were generated for. */
  accuracy: number;
  perClass: Record<string, number>;
}

/** Scores generated images against the labels they were generated with. */
export async function classFidelity(classifier: DigitClassifier, images: Float32Array, labels: Int32Array): Promise<ClassFidelity> {
  const predicted = await classifier.predict(images);
  if (predicted.length !== labels.length) throw new Error(`classFidelity: ${predicted.length} images but ${labels.length} labels`);
  const hits = new Map<number, [number, number]>();
  labels.forEach((c, i) => {
    const h = hits.get(c) ?? [0, 0];
    hits.set(c, [h[0] + (predicted[i] === c ? 1 : 0), h[1] + 1]);
  });
  const perClass: Record<string, number> = {};
  let correct = 0;
  for (const [c, [k, n]] of [...hits].sort(([a], [b]) => a - b)) {
    perClass[c] = k / n;
    correct += k;
  }
  return { accuracy: correct / labels.length, perClass };
}
