/**
 * Naive float64 reference implementations the GPU results are checked against. Written for
 * clarity, not speed: explicit index arithmetic over row-major arrays.
 */

export type Arr = { data: Float64Array; shape: number[] };

export const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Coordinates of linear index i in shape. */
export function coords(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return c;
}

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    return da === 1 ? db : da;
  });
}

/** Value of a (right-aligned, broadcast) at the coordinates of the output. */
function at(a: Arr, c: number[]): number {
  const off = c.length - a.shape.length;
  const s = strides(a.shape);
  let idx = 0;
  for (let d = 0; d < a.shape.length; d++) idx += (a.shape[d] === 1 ? 0 : c[off + d]) * s[d];
  return a.data[idx];
}

export function binary(a: Arr, b: Arr, f: (x: number, y: number) => number): Arr {
  const shape = broadcastShape(a.shape, b.shape);
  const data = new Float64Array(size(shape));
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, shape);
    data[i] = f(at(a, c), at(b, c));
  }
  return { data, shape };
}

export function ternary(c: Arr, a: Arr, b: Arr, f: (c: number, x: number, y: number) => number): Arr {
  const shape = broadcastShape(broadcastShape(c.shape, a.shape), b.shape);
  const data = new Float64Array(size(shape));
  for (let i = 0; i < data.length; i++) {
    const k = coords(i, shape);
    data[i] = f(at(c, k), at(a, k), at(b, k));
  }
  return { data, shape };
}

/** Reduces over `axes` with an accumulator; returns the keepdims shape and the reduced shape. */
export function reduce(
  a: Arr,
  axes: readonly number[],
  init: number,
  step: (acc: number, v: number, j: number) => number,
  finish: (acc: number, n: number) => number = (x) => x,
): { data: Float64Array; keptShape: number[] } {
  const keptShape = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Float64Array(size(keptShape)).fill(init);
  const counts = new Float64Array(out.length);
  const ks = strides(keptShape);
  for (let i = 0; i < a.data.length; i++) {
    const c = coords(i, a.shape);
    let o = 0;
    for (let d = 0; d < c.length; d++) if (!axes.includes(d)) o += c[d] * ks[d];
    out[o] = step(out[o], a.data[i], counts[o]);
    counts[o]++;
  }
  const n = size(axes.map((ax) => a.shape[ax]));
  for (let i = 0; i < out.length; i++) out[i] = finish(out[i], n);
  return { data: out, keptShape };
}

export function permute(a: Arr, perm: readonly number[]): Arr {
  const shape = perm.map((p) => a.shape[p]);
  const s = strides(a.shape);
  const data = new Float64Array(a.data.length);
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, shape);
    let idx = 0;
    perm.forEach((p, k) => (idx += c[k] * s[p]));
    data[i] = a.data[idx];
  }
  return { data, shape };
}

export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += a[i * k + p] * b[p * n + j];
      c[i * n + j] = acc;
    }
  }
  return c;
}

/** erf to double precision (Abramowitz & Stegun 7.1.28 is too coarse; use a series/continued fraction). */
export function erf(x: number): number {
  // Maclaurin series for |x| < 3, erfc continued fraction beyond: accurate to ~1e-14.
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = x;
    let term = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/(x√π) · 1/(1+ 1/(2x²)/(1+2/(2x²)/(1+...))) via Lentz on the standard CF
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}
