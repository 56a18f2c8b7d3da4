/**
 * Float64 references for the nn layers, written from the definitions with explicit loops, and a
 * central finite-difference gradient of any such reference (the independent check of backward).
 */

/** y[r, o] = Σ_i x[r, i] · w[o, i] + b[o]. */
export function linearRef(x: Float64Array, w: Float64Array, b: Float64Array | null, rows: number, inF: number, outF: number): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let acc = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) acc += x[r * inF + i] * w[o * inF + i];
      y[r * outF + o] = acc;
    }
  }
  return y;
}

export interface ConvGeom {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  kh: number;
  kw: number;
  stride: number;
  padding: number;
  dilation: number;
  groups: number;
}

export function convOutSize(g: ConvGeom): [number, number] {
  const o = (len: number, k: number) => Math.floor((len + 2 * g.padding - g.dilation * (k - 1) - 1) / g.stride) + 1;
  return [o(g.h, g.kh), o(g.w, g.kw)];
}

/** A conv's geometry with [y, x] pairs for stride, padding and dilation, and its output size. */
export interface ConvPairGeom extends Omit<ConvGeom, 'stride' | 'padding' | 'dilation'> {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  ho: number;
  wo: number;
}

/**
 * Naive float64 conv by the definition; with `gy` it also scatters the gradients of Σ y·gy into
 * dx, dw and db along the same loops.
 */
export function convRef(x: Float64Array, w: Float64Array, b: Float64Array | null, g: ConvPairGeom, gy?: Float64Array) {
  const { n, cin, h, w: wd, cout, kh, kw, stride, padding, dilation, groups, ho, wo } = g;
  const cig = cin / groups;
  const cog = cout / groups;
  const y = new Float64Array(n * cout * ho * wo);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(cout);
  for (let b0 = 0; b0 < n; b0++) {
    for (let co = 0; co < cout; co++) {
      const grp = Math.floor(co / cog);
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          const yi = ((b0 * cout + co) * ho + oy) * wo + ox;
          let acc = b ? b[co] : 0;
          const gv = gy ? gy[yi] : 0;
          for (let ci = 0; ci < cig; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * stride[0] - padding[0] + ky * dilation[0];
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * stride[1] - padding[1] + kx * dilation[1];
                if (ix < 0 || ix >= wd) continue;
                const xi = ((b0 * cin + grp * cig + ci) * h + iy) * wd + ix;
                const wi = ((co * cig + ci) * kh + ky) * kw + kx;
                acc += x[xi] * w[wi];
                if (gy) {
                  dx[xi] += gv * w[wi];
                  dw[wi] += gv * x[xi];
                }
              }
            }
          }
          y[yi] = acc;
          db[co] += gv;
        }
      }
    }
  }
  return { y, dx, dw, db };
}

/** Direct 2-D convolution with zero padding, NCHW, weight [cout, cin/groups, kh, kw]. */
export function conv2dRef(x: Float64Array, w: Float64Array, b: Float64Array | null, g: ConvGeom): Float64Array {
  const [ho, wo] = convOutSize(g);
  const pair = (v: number): [number, number] => [v, v];
  return convRef(x, w, b, { ...g, stride: pair(g.stride), padding: pair(g.padding), dilation: pair(g.dilation), ho, wo }).y;
}

/** GroupNorm of x [n, c, spatial] with biased variance, then per-channel affine. */
export function groupNormRef(
  x: Float64Array,
  n: number,
  c: number,
  spatial: number,
  groups: number,
  weight: Float64Array | null,
  bias: Float64Array | null,
  eps: number,
): Float64Array {
  const y = new Float64Array(x.length);
  const cg = c / groups;
  const count = cg * spatial;
  for (let b = 0; b < n; b++) {
    for (let g = 0; g < groups; g++) {
      const start = (b * c + g * cg) * spatial;
      let mean = 0;
      for (let i = 0; i < count; i++) mean += x[start + i];
      mean /= count;
      let v = 0;
      for (let i = 0; i < count; i++) v += (x[start + i] - mean) ** 2;
      v /= count;
      const inv = 1 / Math.sqrt(v + eps);
      for (let i = 0; i < count; i++) {
        const ch = g * cg + Math.floor(i / spatial);
        y[start + i] = (x[start + i] - mean) * inv * (weight ? weight[ch] : 1) + (bias ? bias[ch] : 0);
      }
    }
  }
  return y;
}

/** LayerNorm over the last `len` values of each row. */
export function layerNormRef(x: Float64Array, len: number, weight: Float64Array | null, bias: Float64Array | null, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / len; r++) {
    let mean = 0;
    for (let i = 0; i < len; i++) mean += x[r * len + i];
    mean /= len;
    let v = 0;
    for (let i = 0; i < len; i++) v += (x[r * len + i] - mean) ** 2;
    v /= len;
    for (let i = 0; i < len; i++) {
      y[r * len + i] = ((x[r * len + i] - mean) / Math.sqrt(v + eps)) * (weight ? weight[i] : 1) + (bias ? bias[i] : 0);
    }
  }
  return y;
}

export interface AttentionWeights {
  gnWeight: Float64Array;
  gnBias: Float64Array;
  wq: Float64Array;
  bq: Float64Array;
  wk: Float64Array;
  bk: Float64Array;
  wv: Float64Array;
  bv: Float64Array;
  wo: Float64Array;
  bo: Float64Array;
}

/**
 * diffusers' spatial self-attention on x [b, c, h, w]: GroupNorm, per-position q/k/v, per-head
 * softmax(q·k / sqrt(d))·v, output projection, residual, / rescale.
 */
export function spatialAttentionRef(
  x: Float64Array,
  shape: [number, number, number, number],
  p: AttentionWeights,
  o: { heads: number; dimHead: number; groups: number; eps: number; rescale: number },
): Float64Array {
  const [b, c, h, w] = shape;
  const hw = h * w;
  const inner = o.heads * o.dimHead;
  const normed = groupNormRef(x, b, c, hw, o.groups, p.gnWeight, p.gnBias, o.eps);
  const y = new Float64Array(x.length);
  for (let n = 0; n < b; n++) {
    // tokens[s, ch] = normed[n, ch, s]
    const tokens = new Float64Array(hw * c);
    for (let ch = 0; ch < c; ch++) for (let s = 0; s < hw; s++) tokens[s * c + ch] = normed[(n * c + ch) * hw + s];
    const q = linearRef(tokens, p.wq, p.bq, hw, c, inner);
    const k = linearRef(tokens, p.wk, p.bk, hw, c, inner);
    const v = linearRef(tokens, p.wv, p.bv, hw, c, inner);
    const merged = new Float64Array(hw * inner);
    for (let head = 0; head < o.heads; head++) {
      const off = head * o.dimHead;
      for (let i = 0; i < hw; i++) {
        const scores = new Float64Array(hw);
        let max = -Infinity;
        for (let j = 0; j < hw; j++) {
          let dot = 0;
          for (let d = 0; d < o.dimHead; d++) dot += q[i * inner + off + d] * k[j * inner + off + d];
          scores[j] = dot / Math.sqrt(o.dimHead);
          max = Math.max(max, scores[j]);
        }
        let total = 0;
        for (let j = 0; j < hw; j++) total += (scores[j] = Math.exp(scores[j] - max));
        for (let d = 0; d < o.dimHead; d++) {
          let acc = 0;
          for (let j = 0; j < hw; j++) acc += (scores[j] / total) * v[j * inner + off + d];
          merged[i * inner + off + d] = acc;
        }
      }
    }
    const out = linearRef(merged, p.wo, p.bo, hw, inner, c);
    for (let ch = 0; ch < c; ch++) {
      for (let s = 0; s < hw; s++) {
        const at = (n * c + ch) * hw + s;
        y[at] = (out[s * c + ch] + x[at]) / o.rescale;
      }
    }
  }
  return y;
}

/**
 * d(Σ_i r_i · f(inputs)_i) / d inputs[which], by central differences in float64 with step h
 * relative to each value's magnitude.
 */
export function fdGrad(f: (inputs: Float64Array[]) => Float64Array, inputs: Float64Array[], r: Float64Array, which: number, h = 1e-6): Float64Array {
  const dot = (y: Float64Array) => y.reduce((s, v, i) => s + v * r[i], 0);
  const x = inputs[which];
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    const step = h * Math.max(1, Math.abs(keep));
    x[i] = keep + step;
    const up = dot(f(inputs));
    x[i] = keep - step;
    const down = dot(f(inputs));
    x[i] = keep;
    grad[i] = (up - down) / (2 * step);
  }
  return grad;
}
