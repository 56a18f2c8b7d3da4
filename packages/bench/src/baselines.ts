/**
 * Reference points measured on the same adapter: a naive one-invocation-per-output matmul (what
 * the register-blocked kernels are judged against), a pure-FMA kernel (the compute ceiling) and a
 * GPU-side buffer copy (the bandwidth ceiling).
 */
import { kernel } from '@transfuse/kernels';
import { randn, runtime, tidy, type Tensor } from '@transfuse/core';
import type { Side } from './types.js';

const NAIVE_WG = 8;

function naiveMatmulKernel() {
  return kernel('bench_naive_matmul', () => ({
    inputs: ['a_in', 'b_in'],
    outputs: ['c_out'],
    uniform: 'u',
    wgsl: `
struct U { M: u32, N: u32, K: u32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a_in: array<f32>;
@group(0) @binding(2) var<storage, read> b_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> c_out: array<f32>;
@compute @workgroup_size(${NAIVE_WG}, ${NAIVE_WG}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y;
  let col = gid.x;
  if (row >= u.M || col >= u.N) { return; }
  var s = 0.0;
  for (var k = 0u; k < u.K; k++) { s += a_in[row * u.K + k] * b_in[k * u.N + col]; }
  c_out[row * u.N + col] = s;
}`,
  }));
}

/** C = A·B for square n x n matrices, one invocation per element of C. */
export function naiveMatmul(n: number): Side {
  const a = randn([n, n]);
  const b = randn([n, n]);
  const c = randn([n, n]);
  const op = 'bench naive matmul';
  return {
    step() {
      runtime().dispatch(naiveMatmulKernel(), {
        op,
        params: { M: n, N: n, K: n, pad: 0 },
        inputs: [a.storageFor(op), b.storageFor(op)],
        outputs: [c.storageFor(op)],
        workgroups: [Math.ceil(n / NAIVE_WG), Math.ceil(n / NAIVE_WG), 1],
      });
    },
    dispose: () => [a, b, c].forEach((t) => t.dispose()),
  };
}

const FMA_WG = 64;
const FMA_CHAINS = 8;
export const FMA_GROUPS = 256;
export const FMA_ITERS = 2048;
/** FLOPs of one FMA-peak dispatch: each fma on a vec4 is 8 FLOPs. */
export const FMA_FLOPS = FMA_GROUPS * FMA_WG * FMA_ITERS * FMA_CHAINS * 8;

function fmaKernel() {
  const chains = [...Array(FMA_CHAINS).keys()];
  return kernel('bench_fma_peak', () => ({
    inputs: [],
    outputs: ['y_out'],
    uniform: 'u',
    wgsl: `
struct U { iters: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> y_out: array<vec4<f32>>;
@compute @workgroup_size(${FMA_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // Independent chains keep the FMA units busy; the sum is stored so nothing is optimised away.
  let seed = f32(gid.x) * 1e-7;
  ${chains.map((i) => `var c${i} = vec4<f32>(seed + ${i}.0);`).join('\n  ')}
  let m = vec4<f32>(0.9999);
  let d = vec4<f32>(1e-4);
  for (var i = 0u; i < u.iters; i++) {
    ${chains.map((i) => `c${i} = fma(c${i}, m, d);`).join('\n    ')}
  }
  y_out[gid.x] = ${chains.map((i) => `c${i}`).join(' + ')};
}`,
  }));
}

/** Dependent FMAs with no memory traffic: the most FLOP/s this adapter gives a WGSL kernel. */
export function fmaPeak(): Side {
  const y = randn([FMA_GROUPS * FMA_WG * 4]);
  const op = 'bench fma peak';
  return {
    step() {
      runtime().dispatch(fmaKernel(), { op, params: { iters: FMA_ITERS, p0: 0, p1: 0, p2: 0 }, inputs: [], outputs: [y.storageFor(op)], workgroups: [FMA_GROUPS] });
    },
    dispose: () => y.dispose(),
  };
}

/** copyBufferToBuffer of `bytes` bytes: the bandwidth ceiling (work = bytes read + written). */
export function bufferCopy(bytes: number): Side {
  const rt = runtime();
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const src = rt.device.createBuffer({ size: bytes, usage });
  const dst = rt.device.createBuffer({ size: bytes, usage });
  return {
    step() {
      // Submit any recorded work first so the copy is ordered after it.
      rt.flush();
      const enc = rt.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, dst, 0, bytes);
      rt.device.queue.submit([enc.finish()]);
    },
    dispose() {
      src.destroy();
      dst.destroy();
    },
  };
}

/** A Side whose step runs `fn` in a tidy scope, so every tensor it makes is released. */
export function tidySide(inputs: Tensor[], fn: () => unknown): Side {
  return {
    // The result is not returned from tidy, so the step's output is freed, not kept alive.
    step: () => tidy(() => void fn()),
    dispose: () => inputs.forEach((t) => t.dispose()),
  };
}
