// The Hugging Face safetensors format as bytes (browser-safe; file reading and writing is in
// safetensors_file.ts, behind @transfuse/core/node):
//   u64 LE header length N | N bytes of UTF-8 JSON (space padded) | raw little-endian tensor data.
// Decoding validates the whole header before allocating any tensor, so a hostile or truncated
// file fails with a message naming the file instead of exhausting memory.

import { safeDTypeOf } from './half.js';

export type SafeDType = 'F32' | 'I32' | 'F64' | 'F16' | 'BF16' | 'U8' | 'I8' | 'I16' | 'U16' | 'U32' | 'I64' | 'BOOL';

export type SafeTypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array;

/** A tensor as stored on disk. F16/BF16 data is the raw bits (Uint16Array), BOOL is one byte per element (Uint8Array). */
export interface NamedArray {
  dtype: SafeDType;
  shape: number[];
  data: SafeTypedArray;
}

/** A header entry; dataOffsets are relative to the start of the data region. */
export interface SafeTensorInfo {
  dtype: SafeDType;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Map<string, SafeTensorInfo>;
  metadata: Record<string, string>;
  /** Absolute byte offset of the data region in the file. */
  dataStart: number;
}

/** Same cap as the reference implementation: bigger headers are refused before being read. */
export const MAX_HEADER_BYTES = 100_000_000;
/** loadSafetensors reads the whole file into one buffer; refuse early rather than fail inside V8. */
export const MAX_LOAD_BYTES = 2 ** 31;

type TypedArrayCtor = { new (length: number): SafeTypedArray; readonly name: string };

const DTYPES: Record<SafeDType, { bytes: number; ctor: TypedArrayCtor }> = {
  F64: { bytes: 8, ctor: Float64Array },
  F32: { bytes: 4, ctor: Float32Array },
  F16: { bytes: 2, ctor: Uint16Array },
  BF16: { bytes: 2, ctor: Uint16Array },
  I64: { bytes: 8, ctor: BigInt64Array },
  I32: { bytes: 4, ctor: Int32Array },
  I16: { bytes: 2, ctor: Int16Array },
  I8: { bytes: 1, ctor: Int8Array },
  U32: { bytes: 4, ctor: Uint32Array },
  U16: { bytes: 2, ctor: Uint16Array },
  U8: { bytes: 1, ctor: Uint8Array },
  BOOL: { bytes: 1, ctor: Uint8Array },
};

const METADATA_KEY = '__metadata__';
const ENTRY_FIELDS = ['dtype', 'shape', 'data_offsets'];
// Typed arrays use host byte order and the format is little-endian; every supported Node host is LE.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(source: string, message: string): never {
  throw new Error(`${source}: ${message}`);
}

function assertLittleEndian(source: string): void {
  if (!HOST_IS_LITTLE_ENDIAN) fail(source, 'safetensors I/O needs a little-endian host');
}

function isDType(value: unknown): value is SafeDType {
  return typeof value === 'string' && Object.hasOwn(DTYPES, value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

// BigInt so that a hostile shape such as [2^40, 2^40] cannot overflow into a plausible size.
function elementCount(shape: readonly number[]): bigint {
  return shape.reduce((n, d) => n * BigInt(d), 1n);
}

function bytesOf(data: SafeTypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Encoding

export interface EncodedSafetensors {
  /** Length prefix plus padded JSON header. */
  head: Uint8Array;
  /** Tensor bytes in file order, as views on the caller's arrays (no copy). */
  chunks: Uint8Array[];
  byteLength: number;
}

/** Validates and lays out a file without copying tensor data (the file writer streams the chunks). */
export function encodeSafetensorsParts(
  tensors: Record<string, NamedArray> | Map<string, NamedArray>,
  metadata: Record<string, string> | undefined,
  source: string,
): EncodedSafetensors {
  assertLittleEndian(source);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') fail(source, `metadata value for '${key}' must be a string, got ${typeof value}`);
    }
    header[METADATA_KEY] = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of entries) {
    if (name === '') fail(source, 'tensor names must be non-empty');
    if (name === METADATA_KEY) fail(source, `'${METADATA_KEY}' is reserved and cannot name a tensor`);
    const { shape, data } = tensor;
    // Names as users write them ('float32', 'torch.float16') are accepted beside the codes.
    const dtype = isDType(tensor.dtype) ? tensor.dtype : safeDTypeOf(tensor.dtype);
    if (!dtype) fail(source, `tensor '${name}': unknown dtype ${JSON.stringify(tensor.dtype)} (use a safetensors code such as F32, or a name such as float32)`);
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(source, `tensor '${name}': shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const { ctor } = DTYPES[dtype];
    if (!(data instanceof ctor)) {
      fail(source, `tensor '${name}': dtype ${dtype} needs ${ctor.name} data, got ${data?.constructor?.name ?? typeof data}`);
    }
    if (BigInt(data.length) !== elementCount(shape)) {
      fail(source, `tensor '${name}': data has ${data.length} elements but shape ${formatShape(shape)} needs ${elementCount(shape)}`);
    }
    // Defining the property keeps a tensor named '__proto__' an ordinary key.
    Object.defineProperty(header, name, {
      value: { dtype, shape, data_offsets: [offset, offset + data.byteLength] },
      enumerable: true,
      configurable: true,
      writable: true,
    });
    chunks.push(bytesOf(data));
    offset += data.byteLength;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so the data region starts 8-byte aligned in the file.
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > MAX_HEADER_BYTES) fail(source, `header of ${headerLength} bytes exceeds the ${MAX_HEADER_BYTES}-byte cap readers enforce`);
  const head = new Uint8Array(8 + headerLength).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLength), true);
  head.set(json, 8);
  return { head, chunks, byteLength: head.length + offset };
}

/** Serialises tensors (in iteration order) and optional string metadata to safetensors bytes. */
export function encodeSafetensors(
  tensors: Record<string, NamedArray> | Map<string, NamedArray>,
  metadata?: Record<string, string>,
): Uint8Array {
  const { head, chunks, byteLength } = encodeSafetensorsParts(tensors, metadata, 'encodeSafetensors');
  const out = new Uint8Array(byteLength);
  out.set(head);
  let position = head.length;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Header validation

/** The header length from the file's first 8 bytes, checked against the cap and the file size. */
export function safetensorsHeaderLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) fail(source, `file is ${fileSize} bytes, too short for the 8-byte header length`);
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) fail(source, `header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte cap`);
  if (8 + Number(length) > fileSize) fail(source, `header length ${length} runs past the end of the ${fileSize}-byte file`);
  return Number(length);
}

/**
 * JSON.parse silently keeps the last of duplicate keys, so scan the (already valid) JSON text
 * for object keys and report the first key repeated within one object.
 */
function findDuplicateKey(json: string): string | undefined {
  const objects: (Set<string> | null)[] = []; // null marks an array level
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x7b /* { */) objects.push(new Set());
    else if (c === 0x5b /* [ */) objects.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) objects.pop();
    else if (c === 0x22 /* " */) {
      let end = i + 1;
      while (json.charCodeAt(end) !== 0x22) end += json.charCodeAt(end) === 0x5c /* \ */ ? 2 : 1;
      let next = end + 1;
      while (/\s/.test(json[next] ?? '')) next++;
      const keys = objects[objects.length - 1];
      if (json[next] === ':' && keys) {
        const key = JSON.parse(json.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      i = end;
    }
  }
  return undefined;
}

function parseEntry(name: string, entry: unknown, dataLength: number, source: string): SafeTensorInfo {
  const where = `tensor '${name}'`;
  if (!isPlainObject(entry)) fail(source, `${where}: entry must be an object, got ${JSON.stringify(entry)}`);
  for (const field of ENTRY_FIELDS) {
    if (!Object.hasOwn(entry, field)) fail(source, `${where}: missing field '${field}'`);
  }
  for (const field of Object.keys(entry)) {
    if (!ENTRY_FIELDS.includes(field)) fail(source, `${where}: unknown field '${field}'`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isDType(dtype)) fail(source, `${where}: unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    fail(source, `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail(source, `${where}: data_offsets must be two non-negative integers [begin, end], got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(source, `${where}: data_offsets [${begin}, ${end}] have begin after end`);
  if (end > dataLength) fail(source, `${where}: data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data region`);
  const needed = elementCount(shape) * BigInt(DTYPES[dtype].bytes);
  if (BigInt(end - begin) !== needed) {
    fail(source, `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} ${formatShape(shape)} needs ${needed}`);
  }
  return { dtype, shape: [...shape], dataOffsets: [begin, end] };
}

function parseMetadata(value: unknown, source: string): Record<string, string> {
  if (!isPlainObject(value)) fail(source, `${METADATA_KEY} must be an object of strings, got ${JSON.stringify(value)}`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') fail(source, `${METADATA_KEY} value for '${key}' must be a string, got ${JSON.stringify(item)}`);
  }
  // fromEntries defines own properties, so a '__proto__' key stays data rather than a prototype.
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

/** Tensors must tile the data region exactly: sorted by offset, each starts where the previous ended. */
function checkCoverage(tensors: Map<string, SafeTensorInfo>, dataLength: number, source: string): void {
  const sorted = [...tensors].sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  let previous = '';
  for (const [name, { dataOffsets: [begin, end] }] of sorted) {
    if (begin < cursor) fail(source, `tensor '${name}' (data_offsets [${begin}, ${end}]) overlaps tensor '${previous}', which ends at ${cursor}`);
    if (begin > cursor) fail(source, `hole in the data region: bytes [${cursor}, ${begin}) before tensor '${name}' belong to no tensor`);
    cursor = end;
    previous = name;
  }
  if (cursor < dataLength) fail(source, `trailing bytes: data region bytes [${cursor}, ${dataLength}) after the last tensor belong to no tensor`);
}

/** Validates a header's JSON bytes against the data region that follows it. */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataStart: number, dataLength: number, source: string): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail(source, 'header is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    fail(source, `header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(parsed)) fail(source, `header must be a JSON object, got ${Array.isArray(parsed) ? 'an array' : JSON.stringify(parsed)}`);
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) fail(source, `header has duplicate key '${duplicate}'`);

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, SafeTensorInfo>();
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === METADATA_KEY) metadata = parseMetadata(entry, source);
    else tensors.set(name, parseEntry(name, entry, dataLength, source));
  }
  checkCoverage(tensors, dataLength, source);
  return { tensors, metadata, dataStart };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Parses safetensors bytes; every error message starts with `source`. Tensor data is copied into fresh, aligned arrays. */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = '<buffer>',
): { tensors: Map<string, NamedArray>; metadata: Record<string, string> } {
  assertLittleEndian(source);
  const headerLength = safetensorsHeaderLength(bytes, bytes.length, source);
  const dataStart = 8 + headerLength;
  const header = parseSafetensorsHeader(bytes.subarray(8, dataStart), dataStart, bytes.length - dataStart, source);

  const tensors = new Map<string, NamedArray>();
  for (const [name, { dtype, shape, dataOffsets: [begin, end] }] of header.tensors) {
    const { bytes: size, ctor } = DTYPES[dtype];
    const data = new ctor((end - begin) / size);
    bytesOf(data).set(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { dtype, shape, data });
  }
  return { tensors, metadata: header.metadata };
}
