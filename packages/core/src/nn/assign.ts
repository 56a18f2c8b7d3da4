/** In-place copies into existing tensors (parameters, optimizer state), bit for bit. */
import { MAX_RANK, scatterStridedKernel } from '@transfuse/kernels';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { expectTensors, run1d } from '../ops/util.js';

function packed(first: number): number[] {
  const v = new Array<number>(MAX_RANK).fill(0);
  v[0] = first;
  return v;
}

/** dst ← src (same shape and dtype) on the GPU, keeping dst's identity; no autograd. */
export function copyInto(dst: Tensor, src: Tensor, op: string): void {
  expectTensors(op, null, dst, src);
  if (dst.dtype !== src.dtype || dst.shape.join() !== src.shape.join()) {
    throw new Error(`${op}: cannot copy a ${src.dtype} tensor of shape ${fmt(src.shape)} into a ${dst.dtype} one of shape ${fmt(dst.shape)}`);
  }
  // Same storage (a tensor loaded onto itself): nothing to do, and WebGPU forbids the aliasing.
  if (dst.size === 0 || dst.storageFor(op) === src.storageFor(op)) return;
  // The strided scatter copies 32-bit words; a rank-1 walk with stride 1 is a plain copy.
  run1d(scatterStridedKernel(), op, dst.size, [src], [dst], { n: dst.size, rank: 1, offset: 0, shape: packed(dst.size), sy: packed(1) });
}
