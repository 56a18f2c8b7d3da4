/** Helpers every op file uses: allocation of outputs, input checks, dispatch grids. */
import { grid, MAX_RANK, ROW_WORKGROUP, rowModeRule, type Kernel, type Params, type RowMode } from '@transfuse/kernels';
import { runtime } from '../runtime/current.js';
import { checkShape, fmt, sizeOf, type Shape } from '../shape.js';
import { Tensor, type DType } from '../tensor.js';

/** A new uninitialised tensor (its kernel writes every element). */
export function empty(shape: Shape, dtype: DType, op: string): Tensor {
  checkShape(shape, op);
  const size = sizeOf(shape);
  const storage = runtime().alloc(size * 4, `${op}: a ${dtype} tensor of shape ${fmt(shape)}`);
  return new Tensor(storage, shape, dtype);
}

/** Checks that inputs are live tensors of the expected dtype. */
export function expectTensors(op: string, dtype: DType | null, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (!(t instanceof Tensor)) throw new Error(`${op}: expected a Tensor, got ${typeof t === 'object' ? String(t) : typeof t}`);
    t.storageFor(op);
    if (dtype && t.dtype !== dtype) {
      throw new Error(`${op}: expected ${dtype} tensors, got ${t.dtype} of shape ${fmt(t.shape)}`);
    }
  }
}

/** Runs a kernel whose invocations cover `n` work items on a 1-D (or 2-D, past 65535 groups) grid. */
export function run1d(
  k: Kernel,
  op: string,
  n: number,
  inputs: Tensor[],
  outputs: Tensor[],
  params: Params,
): void {
  const rt = runtime();
  const { workgroups, stride } = grid(n, k.workgroupSize[0], rt.limits.maxComputeWorkgroupsPerDimension);
  rt.dispatch(k, {
    op,
    params: { ...params, stride },
    inputs: inputs.map((t) => t.storageFor(op)),
    outputs: outputs.map((t) => t.storageFor(op)),
    workgroups,
  });
}

/** Per-axis values (shape, strides) padded with zeros to the MAX_RANK slots of a kernel's params. */
export function pack(v: number[]): number[] {
  const out = new Array<number>(MAX_RANK).fill(0);
  v.forEach((x, i) => (out[i] = x));
  return out;
}

export function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}

/** How a row kernel (group norm, softmax) covers `rows` rows: `force`, else by `rowModeRule`. */
export function rowLaunch(rows: number, force?: RowMode): { mode: RowMode; workgroups: [number, number]; gridX: number } {
  const rt = runtime();
  const mode: RowMode = force ?? rowModeRule(rows, rt.acquired.compatibility);
  const g = grid(rows, mode === 'thread' ? ROW_WORKGROUP : 1, rt.limits.maxComputeWorkgroupsPerDimension);
  return { mode, workgroups: g.workgroups, gridX: g.workgroups[0] };
}
