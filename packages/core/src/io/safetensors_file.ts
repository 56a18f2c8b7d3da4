// Safetensors files (Node only): reading a header or a whole file, and atomic writes. The byte
// format itself is in safetensors.ts.

import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  MAX_LOAD_BYTES,
  decodeSafetensors,
  encodeSafetensorsParts,
  parseSafetensorsHeader,
  safetensorsHeaderLength,
  type NamedArray,
  type SafeDType,
  type SafetensorsHeader,
} from './safetensors.js';
import { f32ToF16Bits, safeDTypeOf } from './half.js';

function failAt(path: string, message: string): never {
  throw new Error(`${path}: ${message}`);
}

// Node caps one read/write call below 2 GiB; stay well under it.
const IO_CHUNK = 1 << 30;

function withPath(path: string, err: unknown): Error {
  if (err instanceof Error && err.message.startsWith(`${path}: `)) return err;
  return new Error(`${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function readExactly(fd: number, target: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < target.length) {
    const n = readSync(fd, target, done, Math.min(target.length - done, IO_CHUNK), position + done);
    if (n === 0) failAt(path, `file ended early at byte ${position + done} (was it truncated while being read?)`);
    done += n;
  }
}

function withFile<T>(path: string, use: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw withPath(path, err);
  }
  try {
    return use(fd, fstatSync(fd).size);
  } catch (err) {
    throw withPath(path, err);
  } finally {
    closeSync(fd);
  }
}

/** Reads and validates only the header: lists tensors without touching their data. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  return withFile(path, (fd, size) => {
    const prefix = new Uint8Array(8);
    if (size >= 8) readExactly(fd, prefix, 0, path);
    const headerLength = safetensorsHeaderLength(prefix, size, path);
    const headerBytes = new Uint8Array(headerLength);
    readExactly(fd, headerBytes, 8, path);
    return parseSafetensorsHeader(headerBytes, 8 + headerLength, size - 8 - headerLength, path);
  });
}

/** Reads a whole safetensors file (up to 2 GiB) and decodes it. */
export function loadSafetensors(path: string): { tensors: Map<string, NamedArray>; metadata: Record<string, string> } {
  const bytes = withFile(path, (fd, size) => {
    if (size > MAX_LOAD_BYTES) {
      failAt(path, `file is ${size} bytes, larger than the 2 GiB loadSafetensors reads at once; use readSafetensorsHeader to inspect it`);
    }
    const all = new Uint8Array(size);
    readExactly(fd, all, 0, path);
    return all;
  });
  return decodeSafetensors(bytes, path);
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < chunk.length) done += writeSync(fd, chunk, done, Math.min(chunk.length - done, IO_CHUNK));
}

/** A tensor whose values are read back asynchronously (a @transfuse/core Tensor, e.g. from model.stateDict()). */
export interface ReadableTensor {
  dtype: string;
  shape: readonly number[];
  data(): Promise<Float32Array | Int32Array>;
}

export interface SaveSafetensorsOptions {
  /** Store every float32 tensor as this dtype: 'F16' (or 'float16') halves the file; default as given. */
  dtype?: string;
}

type Entries<T> = Record<string, T> | Map<string, T>;

/**
 * Writes a checkpoint atomically: the bytes go to a temp file in the same directory, which is
 * fsynced and then renamed over `path`, so `path` always holds either the old or the new file.
 * Validation happens before any file is created; on failure the temp file is removed. Given GPU
 * tensors (`model.stateDict()`), it reads them back first and returns a Promise.
 */
export function saveSafetensors(path: string, tensors: Entries<NamedArray>, metadata?: Record<string, string>, options?: SaveSafetensorsOptions): void;
export function saveSafetensors(path: string, tensors: Entries<NamedArray | ReadableTensor>, metadata?: Record<string, string>, options?: SaveSafetensorsOptions): Promise<void>;
export function saveSafetensors(
  path: string,
  tensors: Entries<NamedArray | ReadableTensor>,
  metadata?: Record<string, string>,
  options: SaveSafetensorsOptions = {},
): void | Promise<void> {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const target = options.dtype === undefined ? undefined : (safeDTypeOf(options.dtype) ?? options.dtype);
  if (options.dtype !== undefined && target !== 'F16' && target !== 'F32') failAt(path, `saveSafetensors: options.dtype must be F16 or F32, got ${JSON.stringify(options.dtype)}`);
  const convert = (a: NamedArray): NamedArray => {
    const dtype = safeDTypeOf(a.dtype) ?? a.dtype;
    if (target !== 'F16' || dtype !== 'F32') return a;
    return { dtype: 'F16', shape: a.shape, data: Uint16Array.from(a.data as Float32Array, f32ToF16Bits) };
  };
  const isReadable = (e: NamedArray | ReadableTensor): e is ReadableTensor => typeof (e as ReadableTensor).data === 'function';
  if (entries.some(([, e]) => isReadable(e))) {
    return (async () => {
      const arrays = new Map<string, NamedArray>();
      for (const [name, e] of entries) {
        arrays.set(name, isReadable(e) ? { dtype: e.dtype as SafeDType, shape: [...e.shape], data: await e.data() } : e);
      }
      saveSafetensors(path, arrays, metadata, options);
    })();
  }
  writeFileAtomically(path, new Map(entries.map(([name, e]) => [name, convert(e as NamedArray)])), metadata);
}

function writeFileAtomically(path: string, tensors: Map<string, NamedArray>, metadata: Record<string, string> | undefined): void {
  const { head, chunks } = encodeSafetensorsParts(tensors, metadata, path);
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o644);
    writeAll(fd, head);
    for (const chunk of chunks) writeAll(fd, chunk);
    // Data must be durable before the rename publishes it, or a crash could leave an empty target.
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw withPath(path, err);
  }
  syncDirectory(dirname(path));
}

// Makes the rename itself durable. Best effort: some platforms (Windows) cannot open or fsync a directory.
export function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // The new file is already in place; only durability across power loss is weaker.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
