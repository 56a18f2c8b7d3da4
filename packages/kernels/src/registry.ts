/**
 * The kernel registry: every WGSL kernel is declared with the names of its inputs, outputs and
 * uniform parameters. At registration the WGSL is reflected (wgsl_reflect) to derive the
 * bind-group layout, the uniform struct's member offsets and the workgroup size, and the
 * declaration is checked against the shader, so a mismatch fails when the kernel is defined,
 * not as a WebGPU validation error at dispatch time.
 *
 * Binding convention: @group(0) @binding(0) is the uniform parameter struct (when the kernel has
 * parameters), then the inputs in order as `var<storage, read>`, then the outputs as
 * `var<storage, read_write>`.
 */
import { WgslReflect, type MemberInfo } from 'wgsl_reflect/wgsl_reflect.module.js';

export type ParamValue = number | boolean | ArrayLike<number>;
export type Params = Record<string, ParamValue>;

export interface KernelDecl {
  /** Unique name of this variant; it is the pipeline cache key, so it must encode every template choice. */
  name: string;
  wgsl: string;
  inputs: string[];
  outputs: string[];
  /** Name of the uniform struct variable, if the kernel takes parameters. */
  uniform?: string;
  /** WGSL language extensions the kernel needs (e.g. 'shader-f16', 'subgroups'). */
  features?: GPUFeatureName[];
}

interface ParamSlot {
  name: string;
  offset: number;
  /** 'u32' | 'i32' | 'f32' */
  scalar: string;
  /** number of scalars (1 for scalars, 4 for vec4, 4*count for array<vec4<...>, count>) */
  length: number;
}

export interface Kernel {
  readonly name: string;
  readonly wgsl: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly features: readonly GPUFeatureName[];
  readonly workgroupSize: readonly [number, number, number];
  /** Layout entries in binding order: the uniform (if any), inputs, outputs. */
  readonly layout: readonly GPUBindGroupLayoutEntry[];
  /** Byte size of the uniform struct (0 without one). */
  readonly uniformSize: number;
  /** Writes the named parameters into `view` at `byteOffset`; throws on a missing or unknown name. */
  packParams(params: Params, view: DataView, byteOffset: number): void;
}

const registry = new Map<string, Kernel>();

/** Number of kernels defined so far (each is reflected once). */
export function kernelCount(): number {
  return registry.size;
}

/**
 * Returns the registered kernel called `name`, building and registering it with `build()` the
 * first time. Builders are called only on a cache miss, so templating costs nothing on a hot path.
 */
export function kernel(name: string, build: () => Omit<KernelDecl, 'name'>): Kernel {
  let k = registry.get(name);
  if (!k) {
    k = defineKernel({ name, ...build() });
    registry.set(name, k);
  }
  return k;
}

function scalarOf(typeName: string, what: string): string {
  if (typeName === 'u32' || typeName === 'i32' || typeName === 'f32') return typeName;
  throw new Error(`${what}: unsupported uniform member type '${typeName}' (use u32, i32, f32, vec4 or array<vec4>)`);
}

function slotOf(kernelName: string, m: MemberInfo): ParamSlot {
  const what = `kernel '${kernelName}' uniform member '${m.name}'`;
  const t = m.type;
  if (!t.format && !t.members) return { name: m.name, offset: m.offset, scalar: scalarOf(t.name, what), length: 1 };
  if (t.name.startsWith('vec') && t.format) {
    return { name: m.name, offset: m.offset, scalar: scalarOf(t.format.name, what), length: Number(t.name[3]) };
  }
  if (t.name === 'array' && t.format && t.format.name.startsWith('vec') && t.format.format && t.count) {
    const lanes = Number(t.format.name[3]);
    return { name: m.name, offset: m.offset, scalar: scalarOf(t.format.format.name, what), length: lanes * t.count };
  }
  throw new Error(`${what}: unsupported type '${t.name}'`);
}

/** Reflects and checks one kernel declaration. Exported for tests; use `kernel()` to get cached ones. */
export function defineKernel(decl: KernelDecl): Kernel {
  const where = `kernel '${decl.name}'`;
  let reflect: WgslReflect;
  try {
    reflect = new WgslReflect(decl.wgsl);
  } catch (e) {
    throw new Error(`${where}: WGSL could not be parsed: ${(e as Error).message}`);
  }
  const entry = reflect.entry.compute;
  if (entry.length !== 1) throw new Error(`${where}: expected exactly one @compute entry point, found ${entry.length}`);
  const wg = entry[0].workgroupSize ?? [1, 1, 1];
  const groups = reflect.getBindGroups();
  if (groups.length > 1) throw new Error(`${where}: only @group(0) is supported, found ${groups.length} groups`);
  const vars = (groups[0] ?? []).filter((v) => v !== undefined);

  const expected: { name: string; kind: 'uniform' | 'read' | 'read_write' }[] = [];
  if (decl.uniform) expected.push({ name: decl.uniform, kind: 'uniform' });
  for (const n of decl.inputs) expected.push({ name: n, kind: 'read' });
  for (const n of decl.outputs) expected.push({ name: n, kind: 'read_write' });
  if (vars.length !== expected.length) {
    throw new Error(
      `${where}: declares ${expected.length} bindings (${expected.map((e) => e.name).join(', ')}) ` +
        `but the WGSL has ${vars.length} (${vars.map((v) => v.name).join(', ')})`,
    );
  }
  const layout: GPUBindGroupLayoutEntry[] = [];
  let uniformSize = 0;
  let slots: ParamSlot[] = [];
  expected.forEach((e, i) => {
    const v = vars.find((x) => x.binding === i);
    if (!v || v.name !== e.name) {
      throw new Error(`${where}: binding ${i} should be '${e.name}' (${e.kind}) but the WGSL has '${v?.name ?? 'nothing'}'`);
    }
    const isUniform = v.resourceType === 0;
    const kind = isUniform ? 'uniform' : v.resourceType === 1 ? v.access : 'unsupported';
    if (kind !== e.kind) throw new Error(`${where}: binding ${i} '${v.name}' is ${kind} in the WGSL, declared ${e.kind}`);
    if (isUniform) {
      const s = reflect.getStructInfo(v.type.name);
      if (!s) throw new Error(`${where}: uniform '${v.name}' must be a struct`);
      uniformSize = s.size;
      slots = s.members.map((m) => slotOf(decl.name, m));
    }
    layout.push({
      binding: i,
      visibility: GPUShaderStageCompute,
      // The uniform takes a dynamic offset into the runtime's ring, so one bind group serves
      // every dispatch over the same buffers.
      buffer: isUniform ? { type: 'uniform', hasDynamicOffset: true } : { type: kind === 'read' ? 'read-only-storage' : 'storage' },
    });
  });

  const names = new Set(slots.map((s) => s.name));
  function packParams(params: Params, view: DataView, byteOffset: number): void {
    for (const key in params) {
      if (!names.has(key)) throw new Error(`${where}: unknown parameter '${key}' (has ${[...names].join(', ')})`);
    }
    for (const s of slots) {
      const v = params[s.name];
      if (v === undefined) throw new Error(`${where}: missing parameter '${s.name}'`);
      if (typeof v === 'number' || typeof v === 'boolean') {
        if (s.length !== 1 && typeof v !== 'number') throw new Error(`${where}: parameter '${s.name}' wants ${s.length} values`);
        write(view, byteOffset + s.offset, s.scalar, Number(v));
      } else {
        if (v.length > s.length) throw new Error(`${where}: parameter '${s.name}' holds ${s.length} values, got ${v.length}`);
        for (let j = 0; j < s.length; j++) write(view, byteOffset + s.offset + 4 * j, s.scalar, j < v.length ? v[j] : 0);
      }
    }
  }
  return {
    name: decl.name,
    wgsl: decl.wgsl,
    inputs: decl.inputs,
    outputs: decl.outputs,
    features: decl.features ?? [],
    workgroupSize: [wg[0], wg[1], wg[2]],
    layout,
    uniformSize,
    packParams,
  };
}

// GPUShaderStage.COMPUTE; spelled out so the registry loads without WebGPU globals installed.
const GPUShaderStageCompute = 4;

function write(view: DataView, at: number, scalar: string, v: number): void {
  if (scalar === 'f32') view.setFloat32(at, v, true);
  else if (scalar === 'i32') view.setInt32(at, v, true);
  else view.setUint32(at, v >>> 0, true);
}
