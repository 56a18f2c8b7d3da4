import { describe, expect, test } from 'vitest';
import { defineKernel } from '@transfuse/kernels';

const WGSL = `
struct U { n: u32, alpha: f32, shape: array<vec4<u32>, 2>, bias: vec4<f32> }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64, 2, 1)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { y[g.x] = x[g.x] * u.alpha; }`;

describe('kernel registry', () => {
  test('derives layout, workgroup size and uniform packing from the WGSL', () => {
    const k = defineKernel({ name: 't', wgsl: WGSL, inputs: ['x'], outputs: ['y'], uniform: 'u' });
    expect(k.workgroupSize).toEqual([64, 2, 1]);
    expect(k.layout.map((e) => e.buffer?.type)).toEqual(['uniform', 'read-only-storage', 'storage']);
    expect(k.layout[0].buffer?.hasDynamicOffset).toBe(true);
    // WGSL layout rules: n@0, alpha@4, shape@16 (32 bytes, 16-aligned), bias@48; struct size 64.
    expect(k.uniformSize).toBe(64);
    const view = new DataView(new ArrayBuffer(64));
    k.packParams({ n: 7, alpha: 0.5, shape: [3, 4, 5], bias: [1, 2, 3, 4] }, view, 0);
    expect(view.getUint32(0, true)).toBe(7);
    expect(view.getFloat32(4, true)).toBe(0.5);
    expect([16, 20, 24, 28, 32].map((o) => view.getUint32(o, true))).toEqual([3, 4, 5, 0, 0]);
    expect(view.getFloat32(60, true)).toBe(4);
  });

  test('packing rejects unknown, missing and oversized parameters', () => {
    const k = defineKernel({ name: 't', wgsl: WGSL, inputs: ['x'], outputs: ['y'], uniform: 'u' });
    const view = new DataView(new ArrayBuffer(64));
    expect(() => k.packParams({ n: 1, alpha: 1, shape: [], bias: [], beta: 2 }, view, 0)).toThrow(/kernel 't': unknown parameter 'beta'/);
    expect(() => k.packParams({ n: 1, shape: [], bias: [] }, view, 0)).toThrow(/kernel 't': missing parameter 'alpha'/);
    expect(() => k.packParams({ n: 1, alpha: 1, shape: new Array(9).fill(1), bias: [] }, view, 0)).toThrow(/'shape' holds 8 values, got 9/);
  });

  test('declarations that do not match the shader fail at definition', () => {
    expect(() => defineKernel({ name: 'a', wgsl: WGSL, inputs: ['x', 'z'], outputs: ['y'], uniform: 'u' })).toThrow(
      /kernel 'a': declares 4 bindings \(u, x, z, y\) but the WGSL has 3 \(u, x, y\)/,
    );
    expect(() => defineKernel({ name: 'b', wgsl: WGSL, inputs: ['y'], outputs: ['x'], uniform: 'u' })).toThrow(
      /kernel 'b': binding 1 should be 'y' \(read\) but the WGSL has 'x'/,
    );
    expect(() => defineKernel({ name: 'c', wgsl: WGSL, inputs: [], outputs: ['x', 'y'], uniform: 'u' })).toThrow(
      /kernel 'c': binding 1 'x' is read in the WGSL, declared read_write/,
    );
    expect(() => defineKernel({ name: 'd', wgsl: 'fn main() {}', inputs: [], outputs: [] })).toThrow(/exactly one @compute entry point, found 0/);
  });
});
