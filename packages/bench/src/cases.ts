/**
 * The benchmark cases: each pairs a Transfuse implementation with the same work in TF.js where
 * TF.js has it. Shapes follow the models this project trains (U-Net convolutions at batch 64,
 * flow/MLP linear layers) plus square matmuls and bandwidth-bound ops.
 */
import type { Tensor as TfTensor, Tensor4D } from '@tensorflow/tfjs-core';
import { add, conv2d, linear, matmulRaw, randn, softmax, sum, type MatmulVariant } from '@transfuse/core';
import { bufferCopy, FMA_FLOPS, fmaPeak, naiveMatmul, tidySide } from './baselines.js';
import type { BenchCase, Side, Tf } from './types.js';

const MiB = 1 << 20;

/** A TF.js Side over inputs made by `make`, running `fn` in tf.tidy. */
function tfSide(tf: Tf, make: () => TfTensor[], fn: (ts: TfTensor[]) => unknown): Side {
  const inputs = make();
  return {
    // As in tidySide: nothing is returned from tidy, so the output is disposed.
    step: () => tf.tidy(() => void fn(inputs)),
    dispose: () => inputs.forEach((t) => t.dispose()),
  };
}

function matmulCase(name: string, variant: MatmulVariant | 'auto', m: number, k: number, n: number, batch = 1): BenchCase {
  const lead = batch > 1 ? [batch] : [];
  return {
    name,
    unit: 'GFLOP/s',
    kind: 'case',
    target: 'compute',
    work: 2 * batch * m * n * k,
    transfuse: () => {
      const a = randn([...lead, m, k]);
      const b = randn([...lead, k, n]);
      return tidySide([a, b], () => matmulRaw(a, b, { variant }));
    },
    tfjs: (tf) => tfSide(tf, () => [tf.randomNormal([...lead, m, k]), tf.randomNormal([...lead, k, n])], ([a, b]) => tf.matMul(a, b)),
  };
}

/** y = relu(x·wᵀ + b): the fused epilogue against tfjs's fused matMul. */
function linearCase(m: number, inF: number, outF: number): BenchCase {
  return {
    name: `linear+bias+relu ${m}x${inF} -> ${outF}`,
    unit: 'GFLOP/s',
    kind: 'case',
    target: 'compute',
    work: 2 * m * inF * outF,
    transfuse: () => {
      const x = randn([m, inF]);
      const w = randn([outF, inF]);
      const b = randn([outF]);
      return tidySide([x, w, b], () => linear(x, w, b, 'relu'));
    },
    tfjs: (tf) =>
      tfSide(
        tf,
        () => [tf.randomNormal([m, inF]), tf.randomNormal([outF, inF]), tf.randomNormal([outF])],
        ([x, w, b]) => tf.fused.matMul({ a: x, b: w, transposeB: true, bias: b, activation: 'relu' }),
      ),
  };
}

/** 3x3 convolution, padding 1, NCHW in Transfuse and NHWC (its native layout) in TF.js. */
function convCase(n: number, c: number, hw: number, backward: boolean): BenchCase {
  const flops = 2 * n * c * hw * hw * c * 9;
  return {
    name: `conv3x3 ${backward ? 'fwd+bwd' : 'fwd'} ${n}x${c}x${hw}x${hw} ${c}->${c}`,
    unit: 'GFLOP/s',
    kind: 'case',
    target: 'compute',
    // Forward, input gradient and weight gradient cost the same FLOPs each.
    work: backward ? 3 * flops : flops,
    transfuse: () => {
      const x = randn([n, c, hw, hw]).requireGrad(backward);
      const w = randn([c, c, 3, 3], { std: 0.1 }).requireGrad(backward);
      const dy = randn([n, c, hw, hw]);
      const side = tidySide([x, w, dy], () => {
        const y = conv2d(x, w, null, { padding: 1 });
        if (backward) y.backward({ grad: dy });
      });
      return {
        step() {
          side.step();
          for (const t of [x, w]) {
            t.grad?.dispose();
            t.grad = null;
          }
        },
        dispose: side.dispose,
      };
    },
    tfjs: (tf) =>
      tfSide(
        tf,
        () => [tf.randomNormal([n, hw, hw, c]), tf.randomNormal([3, 3, c, c]), tf.randomNormal([n, hw, hw, c])],
        ([x, f, dy]) => {
          tf.conv2d(x as Tensor4D, f as Tensor4D, 1, 'same');
          if (!backward) return;
          // The kernels tf.grads would run for Conv2D (tfjs-core's Node bundle registers no gradients).
          const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
          tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { ...attrs, inputShape: x.shape });
          tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: f.shape });
        },
      ),
  };
}

/** Every case; `variant` forces the matmul kernel of the matmul cases. */
export function allCases(variant: MatmulVariant | 'auto' = 'auto'): BenchCase[] {
  const big = 16 * MiB;
  return [
    { name: 'fma peak (compute ceiling)', unit: 'GFLOP/s', kind: 'ceiling', work: FMA_FLOPS, transfuse: fmaPeak },
    { name: 'buffer copy 64 MiB (bandwidth ceiling)', unit: 'GB/s', kind: 'ceiling', work: 2 * 64 * MiB, transfuse: () => bufferCopy(64 * MiB) },
    matmulCase('matmul 256', variant, 256, 256, 256),
    matmulCase('matmul 512', variant, 512, 512, 512),
    matmulCase('matmul 1024', variant, 1024, 1024, 1024),
    matmulCase('matmul 2048', variant, 2048, 2048, 2048),
    { name: 'naive matmul 1024 (baseline)', unit: 'GFLOP/s', kind: 'baseline', work: 2 * 1024 ** 3, transfuse: () => naiveMatmul(1024) },
    matmulCase('batched matmul 64x128x128x128', variant, 128, 128, 128, 64),
    matmulCase('matmul 256x128 . 128x512', variant, 256, 128, 512),
    matmulCase('matmul 256x512 . 512x512', variant, 256, 512, 512),
    linearCase(256, 512, 512),
    convCase(64, 32, 16, false),
    convCase(64, 64, 32, false),
    convCase(64, 32, 16, true),
    convCase(64, 64, 32, true),
    {
      name: 'add 16M floats',
      unit: 'GB/s',
      kind: 'case',
      work: 3 * 4 * big,
      transfuse: () => {
        const a = randn([big]);
        const b = randn([big]);
        return tidySide([a, b], () => add(a, b));
      },
      tfjs: (tf) => tfSide(tf, () => [tf.randomNormal([big]), tf.randomNormal([big])], ([a, b]) => tf.add(a, b)),
    },
    {
      name: 'sum 16M floats',
      unit: 'GB/s',
      kind: 'case',
      work: 4 * big,
      transfuse: () => {
        const a = randn([big]);
        return tidySide([a], () => sum(a));
      },
      tfjs: (tf) => tfSide(tf, () => [tf.randomNormal([big])], ([a]) => tf.sum(a)),
    },
    {
      name: 'softmax rows 4096x1000',
      unit: 'GB/s',
      kind: 'case',
      // The least traffic possible: read x once, write y once.
      work: 2 * 4 * 4096 * 1000,
      transfuse: () => {
        const x = randn([4096, 1000]);
        return tidySide([x], () => softmax(x, -1));
      },
      tfjs: (tf) => tfSide(tf, () => [tf.randomNormal([4096, 1000])], ([x]) => tf.softmax(x)),
    },
  ];
}
