/**
 * Row kernels: one row of a [rows, len] view per workgroup or per invocation, with reductions
 * across the row. Group norm and softmax are built on these.
 */

export const ROW_WORKGROUP = 64;

/**
 * Two ways to map rows onto invocations. 'workgroup': 64 invocations share a row and reduce
 * through workgroup memory (few long rows). 'thread': one invocation per row, no barriers (many
 * rows: barriers are slow on software drivers).
 */
export type RowMode = 'workgroup' | 'thread';

/**
 * The fixed rule: many rows (128 or more) one invocation each, few long rows a workgroup each.
 * Dawn's OpenGL (compatibility) path computes wrong sums in the workgroup mapping, so it always
 * takes the other.
 */
export function rowModeRule(rows: number, compatibility: boolean): RowMode {
  return rows >= 128 || compatibility ? 'thread' : 'workgroup';
}

export const ROW_SHARED = `var<workgroup> red: array<f32, ${ROW_WORKGROUP}>;`;

/** How a row kernel of either mode is written: `header` opens `main` and defines `row` and `lid`. */
export interface RowCode {
  /** Workgroup-memory declarations (empty in thread mode). */
  shared: string;
  /** WGSL that sums `expr` over the row's invocations into `name`. */
  sum: (name: string, expr: string) => string;
  /** WGSL that takes the maximum of `expr` over the row's invocations into `name`. */
  max: (name: string, expr: string) => string;
  header: string;
  /** Step between the elements one invocation visits. */
  stride: string;
}

/** The uniform must have `gridX`, the x extent of the workgroup grid. */
export function rowCode(mode: RowMode): RowCode {
  const header = `@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lidx: u32, @builtin(global_invocation_id) gid: vec3<u32>) {`;
  if (mode === 'thread') {
    const same = (name: string, expr: string) => `let ${name} = ${expr};`;
    return {
      shared: '',
      sum: same,
      max: same,
      header: `${header}\n  let row = gid.x + gid.y * u.gridX * ${ROW_WORKGROUP}u;\n  let lid = 0u;`,
      stride: '1u',
    };
  }
  return {
    shared: ROW_SHARED,
    sum: workgroupSum,
    max: (name, expr) => workgroupReduce(name, expr, (a, b) => `max(${a}, ${b})`),
    header: `${header}\n  let row = wid.x + wid.y * u.gridX;\n  let lid = lidx;`,
    stride: `${ROW_WORKGROUP}u`,
  };
}

/**
 * WGSL that combines `expr` over the workgroup into `name` (every invocation gets the result).
 * Written out in the entry point rather than as a helper function: Dawn's OpenGL backend computed
 * wrong sums with the barriers inside a function.
 */
function workgroupReduce(name: string, expr: string, combine: (a: string, b: string) => string): string {
  return `red[lid] = ${expr};
  workgroupBarrier();
  for (var half = ${ROW_WORKGROUP / 2}u; half > 0u; half = half >> 1u) {
    if (lid < half) { red[lid] = ${combine('red[lid]', 'red[lid + half]')}; }
    workgroupBarrier();
  }
  let ${name} = red[0];
  workgroupBarrier();`;
}

export const workgroupSum = (name: string, expr: string): string => workgroupReduce(name, expr, (a, b) => `${a} + ${b}`);
