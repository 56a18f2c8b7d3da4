/**
 * USPS-style digits drawn in the page: each digit is a few pen strokes in a unit box, drawn with
 * a thick pen, random slant, rotation, scale and offset, filling the frame the way USPS's
 * normalised 16x16 scans do, then area-averaged down to 16x16. No font or file is needed.
 */
import { createRng, type ImageSet, type Rng } from '@transfuse/models';

type Strokes = (c: OffscreenCanvasRenderingContext2D) => void;

const TAU = 2 * Math.PI;
const DIGITS: Strokes[] = [
  (c) => c.ellipse(0.5, 0.5, 0.27, 0.4, 0, 0, TAU),
  (c) => {
    c.moveTo(0.33, 0.27);
    c.lineTo(0.53, 0.1);
    c.lineTo(0.53, 0.9);
  },
  (c) => {
    c.moveTo(0.22, 0.3);
    c.bezierCurveTo(0.25, 0.0, 0.82, 0.05, 0.74, 0.38);
    c.lineTo(0.2, 0.9);
    c.lineTo(0.82, 0.9);
  },
  (c) => {
    c.moveTo(0.22, 0.16);
    c.bezierCurveTo(0.6, 0.0, 0.9, 0.32, 0.45, 0.47);
    c.bezierCurveTo(0.95, 0.55, 0.72, 1.05, 0.2, 0.85);
  },
  (c) => {
    c.moveTo(0.66, 0.9);
    c.lineTo(0.66, 0.1);
    c.lineTo(0.15, 0.64);
    c.lineTo(0.86, 0.64);
  },
  (c) => {
    c.moveTo(0.78, 0.1);
    c.lineTo(0.32, 0.1);
    c.lineTo(0.26, 0.46);
    c.bezierCurveTo(0.92, 0.3, 0.9, 1.02, 0.2, 0.88);
  },
  (c) => {
    c.moveTo(0.72, 0.1);
    c.bezierCurveTo(0.3, 0.2, 0.14, 0.62, 0.3, 0.82);
    c.bezierCurveTo(0.5, 1.0, 0.86, 0.8, 0.72, 0.6);
    c.bezierCurveTo(0.6, 0.42, 0.3, 0.5, 0.26, 0.66);
  },
  (c) => {
    c.moveTo(0.2, 0.1);
    c.lineTo(0.8, 0.1);
    c.lineTo(0.42, 0.9);
  },
  (c) => {
    c.ellipse(0.5, 0.29, 0.21, 0.19, 0, 0, TAU);
    c.moveTo(0.77, 0.7);
    c.ellipse(0.5, 0.7, 0.27, 0.21, 0, 0, TAU);
  },
  (c) => {
    c.moveTo(0.73, 0.34);
    c.ellipse(0.49, 0.33, 0.24, 0.22, 0, 0, TAU);
    c.moveTo(0.73, 0.34);
    c.bezierCurveTo(0.76, 0.7, 0.6, 0.9, 0.3, 0.9);
  },
];

const SIDE = 16;
const SUPER = 4;

function drawDigit(c: OffscreenCanvasRenderingContext2D, digit: number, rng: Rng): void {
  const px = SIDE * SUPER;
  const u = (lo: number, hi: number) => lo + (hi - lo) * rng.next();
  c.setTransform(1, 0, 0, 1, 0, 0);
  c.fillStyle = 'black';
  c.fillRect(0, 0, px, px);
  const scale = u(0.85, 1.05);
  c.translate(px / 2 + u(-0.06, 0.06) * px, px / 2 + u(-0.05, 0.05) * px);
  c.rotate(u(-0.12, 0.12));
  c.transform(1, 0, u(-0.3, 0.15), 1, 0, 0);
  c.scale(px * scale, px * scale);
  c.translate(-0.5, -0.5);
  c.beginPath();
  DIGITS[digit](c);
  c.lineWidth = u(0.1, 0.17);
  c.lineCap = 'round';
  c.lineJoin = 'round';
  c.strokeStyle = 'white';
  c.stroke();
}

/** `n` digits, classes in rotation, as an ImageSet in [-1, 1] (ink +1), [n, 1, 16, 16]. */
export function uspsStyleDigits(n: number, seed: number): ImageSet {
  const px = SIDE * SUPER;
  const canvas = new OffscreenCanvas(px, px);
  const c = canvas.getContext('2d', { willReadFrequently: true })!;
  const rng = createRng(seed);
  const images = new Float32Array(n * SIDE * SIDE);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 10;
    drawDigit(c, labels[i], rng);
    const rgba = c.getImageData(0, 0, px, px).data;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        let sum = 0;
        for (let dy = 0; dy < SUPER; dy++) for (let dx = 0; dx < SUPER; dx++) sum += rgba[4 * ((y * SUPER + dy) * px + x * SUPER + dx)];
        images[i * SIDE * SIDE + y * SIDE + x] = (2 * sum) / (255 * SUPER * SUPER) - 1;
      }
    }
  }
  return { images, labels, n, channels: 1, height: SIDE, width: SIDE };
}
