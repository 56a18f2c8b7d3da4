/**
 * Image preprocessing on batches stored as n*height*width row-major Float32Arrays.
 */

export type ResizeMode = 'area' | 'bilinear';

/** For each output position along one axis: the contributing input positions and weights. */
interface AxisTaps {
  sources: Int32Array[];
  weights: Float64Array[];
}

/**
 * Exact box filter: output pixel o covers [o*in/out, (o+1)*in/out) of the input axis and
 * averages the input pixels by their overlap length (fractional at the ends), like OpenCV
 * INTER_AREA when shrinking. Lengths are kept in units of 1/out, so overlaps are integers.
 */
function areaTaps(inSize: number, outSize: number): AxisTaps {
  const sources: Int32Array[] = [];
  const weights: Float64Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const lo = o * inSize;
    const hi = lo + inSize;
    const first = Math.floor(lo / outSize);
    const last = Math.min(inSize - 1, Math.ceil(hi / outSize) - 1);
    const src: number[] = [];
    const w: number[] = [];
    for (let p = first; p <= last; p++) {
      const overlap = Math.min(hi, (p + 1) * outSize) - Math.max(lo, p * outSize);
      if (overlap > 0) {
        src.push(p);
        w.push(overlap / inSize);
      }
    }
    sources.push(Int32Array.from(src));
    weights.push(Float64Array.from(w));
  }
  return { sources, weights };
}

/**
 * Linear interpolation at half-pixel centres, as PyTorch `interpolate(mode='bilinear',
 * align_corners=False)` without antialiasing: source = (o + 0.5) * in/out - 0.5, clamped
 * below at 0; the right neighbour is clamped to the last pixel.
 */
function bilinearTaps(inSize: number, outSize: number): AxisTaps {
  const sources: Int32Array[] = [];
  const weights: Float64Array[] = [];
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const position = Math.max(0, (o + 0.5) * scale - 0.5);
    const left = Math.min(Math.floor(position), inSize - 1);
    const right = Math.min(left + 1, inSize - 1);
    const fraction = position - left;
    if (right === left) {
      sources.push(Int32Array.of(left));
      weights.push(Float64Array.of(1));
    } else {
      sources.push(Int32Array.of(left, right));
      weights.push(Float64Array.of(1 - fraction, fraction));
    }
  }
  return { sources, weights };
}

function checkBatch(name: string, images: Float32Array, n: number, h: number, w: number): void {
  if (![n, h, w].every((v) => Number.isInteger(v) && v >= 0) || images.length !== n * h * w) {
    throw new Error(`${name}: expected ${n}x${h}x${w} = ${n * h * w} values, got ${images.length}`);
  }
}

/** Resizes n images of h x w to H x W (separable filter, float64 accumulation). */
export function resizeImages(
  images: Float32Array,
  n: number,
  h: number,
  w: number,
  H: number,
  W: number,
  mode: ResizeMode,
): Float32Array {
  checkBatch('resizeImages', images, n, h, w);
  if (!(Number.isInteger(H) && Number.isInteger(W) && H > 0 && W > 0)) {
    throw new Error(`resizeImages: output size must be positive integers, got ${H}x${W}`);
  }
  const makeTaps = mode === 'area' ? areaTaps : mode === 'bilinear' ? bilinearTaps : undefined;
  if (!makeTaps) throw new Error(`resizeImages: unknown mode '${String(mode)}' (use 'area' or 'bilinear')`);
  const rowTaps = makeTaps(h, H);
  const colTaps = makeTaps(w, W);
  const out = new Float32Array(n * H * W);
  const horizontal = new Float64Array(h * W);
  for (let img = 0; img < n; img++) {
    const inBase = img * h * w;
    for (let y = 0; y < h; y++) {
      for (let X = 0; X < W; X++) {
        const src = colTaps.sources[X];
        const wt = colTaps.weights[X];
        let sum = 0;
        for (let t = 0; t < src.length; t++) sum += wt[t] * images[inBase + y * w + src[t]];
        horizontal[y * W + X] = sum;
      }
    }
    const outBase = img * H * W;
    for (let Y = 0; Y < H; Y++) {
      const src = rowTaps.sources[Y];
      const wt = rowTaps.weights[Y];
      for (let X = 0; X < W; X++) {
        let sum = 0;
        for (let t = 0; t < src.length; t++) sum += wt[t] * horizontal[src[t] * W + X];
        out[outBase + Y * W + X] = sum;
      }
    }
  }
  return out;
}

/** Maps values in [0, 1] to [-1, 1] (v -> 2v - 1), the usual input range of diffusion models. */
export function toSigned(images: Float32Array): Float32Array {
  const out = new Float32Array(images.length);
  for (let k = 0; k < images.length; k++) out[k] = 2 * images[k] - 1;
  return out;
}

/** Inverse of `toSigned`: [-1, 1] -> [0, 1]. */
export function toUnit(images: Float32Array): Float32Array {
  const out = new Float32Array(images.length);
  for (let k = 0; k < images.length; k++) out[k] = (images[k] + 1) / 2;
  return out;
}

/**
 * Pads n images of h x w to H x W, centred (an odd leftover goes to the bottom / right),
 * filling with `background` (0 for [0, 1] data, -1 after `toSigned`). E.g. MNIST 28 -> 32.
 */
export function padImages(
  images: Float32Array,
  n: number,
  h: number,
  w: number,
  H: number,
  W: number,
  background = 0,
): Float32Array {
  checkBatch('padImages', images, n, h, w);
  if (!(Number.isInteger(H) && Number.isInteger(W) && H >= h && W >= w)) {
    throw new Error(`padImages: output ${H}x${W} must be integers at least the input ${h}x${w}`);
  }
  const top = Math.floor((H - h) / 2);
  const left = Math.floor((W - w) / 2);
  const out = new Float32Array(n * H * W).fill(background);
  for (let img = 0; img < n; img++) {
    for (let y = 0; y < h; y++) {
      const srcStart = (img * h + y) * w;
      out.set(images.subarray(srcStart, srcStart + w), (img * H + y + top) * W + left);
    }
  }
  return out;
}
