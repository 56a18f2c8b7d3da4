/** Writing PNG sample sheets to files (Node only); the encoder is in png.ts. */
import { deflateSync } from 'node:zlib';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { encodePng, imageGrid } from './png.js';

/** Writes a PNG grid of images atomically (temp file + rename). */
export function savePngGrid(path: string, images: Float32Array, n: number, h: number, w: number, cols: number, range?: [number, number]): void {
  const g = imageGrid(images, n, h, w, cols, range);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, encodePng(g.pixels, g.width, g.height, (raw) => deflateSync(raw)));
  renameSync(tmp, path);
}
