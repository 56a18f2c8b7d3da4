import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors, type NamedArray, type SafeTypedArray } from '../src/io/safetensors.js';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../src/io/safetensors_file.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const bytesOf = (a: SafeTypedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Builds a file from a header (object or raw JSON text) and a data region, with no padding. */
function fileWith(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  return withHeaderBytes(json, data);
}

function withHeaderBytes(json: Uint8Array, data: Uint8Array | number = 0): Uint8Array {
  const region = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + region.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(region, 8 + json.length);
  return out;
}

/** Just a header-length prefix claiming `length`, followed by `rest` bytes. */
function lengthPrefix(length: bigint, rest: number): Uint8Array {
  const out = new Uint8Array(8 + rest);
  new DataView(out.buffer).setBigUint64(0, length, true);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

function expectSameTensors(got: Map<string, NamedArray>, want: Record<string, NamedArray>): void {
  expect([...got.keys()]).toEqual(Object.keys(want));
  for (const [name, tensor] of Object.entries(want)) {
    const actual = got.get(name)!;
    expect(actual.dtype).toBe(tensor.dtype);
    expect(actual.shape).toEqual(tensor.shape);
    expect(actual.data.constructor).toBe(tensor.data.constructor);
    expect(bytesOf(actual.data)).toEqual(bytesOf(tensor.data));
  }
}

function f32FromBits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

function sampleTensors(): Record<string, NamedArray> {
  const f64Bits = new BigUint64Array([
    0x7ff8000000000123n, // quiet NaN with payload
    0x7ff0000000000001n, // signalling NaN
    0x8000000000000000n, // -0
    0x0000000000000001n, // smallest subnormal
    0xfff0000000000000n, // -Infinity
    0x3ff0000000000000n, // 1
  ]);
  return {
    // NaN payloads, signed NaN, -0, ±Infinity, subnormals, max finite, 1.5
    f32: {
      dtype: 'F32',
      shape: [3, 3],
      data: f32FromBits([0x7fc00001, 0xffa00000, 0x80000000, 0x7f800000, 0xff800000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x3fc00000]),
    },
    i32: { dtype: 'I32', shape: [2, 3], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, -1, 42, 7]) },
    f64: { dtype: 'F64', shape: [2, 3], data: new Float64Array(f64Bits.buffer) },
    u8: { dtype: 'U8', shape: [3], data: new Uint8Array([0, 255, 128]) },
    f16: { dtype: 'F16', shape: [5], data: new Uint16Array([0x3c00, 0x7e01, 0x8000, 0xfc00, 0x0001]) },
    bf16: { dtype: 'BF16', shape: [1, 2], data: new Uint16Array([0x3f80, 0x7fc1]) },
    i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
    i8: { dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) },
    i16: { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
    u16: { dtype: 'U16', shape: [1], data: new Uint16Array([65535]) },
    u32: { dtype: 'U32', shape: [1], data: new Uint32Array([4294967295]) },
    bool: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
    empty: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
    emptyMatrix: { dtype: 'F32', shape: [3, 0], data: new Float32Array(0) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([3.5]) },
  };
}

describe('round trip', () => {
  const metadata = { format: 'pt', note: 'ünïcödé ✓ "quoted"' };

  it('is bit-exact for every dtype, empty tensors and scalars, with metadata', () => {
    const tensors = sampleTensors();
    const bytes = encodeSafetensors(tensors, metadata);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const decoded = decodeSafetensors(bytes);
    expectSameTensors(decoded.tensors, tensors);
    expect(decoded.metadata).toEqual(metadata);
  });

  it('round-trips through files and lists the header without the data', () => {
    const tensors = sampleTensors();
    const path = join(dir, 'roundtrip.safetensors');
    saveSafetensors(path, new Map(Object.entries(tensors)), metadata);
    const loaded = loadSafetensors(path);
    expectSameTensors(loaded.tensors, tensors);
    expect(loaded.metadata).toEqual(metadata);

    const header = readSafetensorsHeader(path);
    expect(header.metadata).toEqual(metadata);
    expect([...header.tensors.keys()]).toEqual(Object.keys(tensors));
    expect(header.tensors.get('i32')).toMatchObject({ dtype: 'I32', shape: [2, 3] });
    const [begin, end] = header.tensors.get('f32')!.dataOffsets;
    const file = readFileSync(path);
    expect(new Uint8Array(file.subarray(header.dataStart + begin, header.dataStart + end))).toEqual(bytesOf(tensors.f32!.data));
  });

  it('decodes from an unaligned view into aligned arrays that do not alias the input', () => {
    const tensors = sampleTensors();
    const bytes = encodeSafetensors(tensors);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const decoded = decodeSafetensors(shifted.subarray(1));
    expectSameTensors(decoded.tensors, tensors);
    const f64 = decoded.tensors.get('f64')!.data;
    expect(f64.byteOffset % 8).toBe(0);
    expect(f64.buffer).not.toBe(shifted.buffer);
  });

  it('accepts an unpadded header (data region not 8-aligned)', () => {
    const header = JSON.stringify({ a: f32([2], 0, 8) }); // 44 bytes: data starts at 52
    expect((8 + header.length) % 8).not.toBe(0);
    const decoded = decodeSafetensors(fileWith(header, bytesOf(new Float32Array([1, -2]))));
    expect([...(decoded.tensors.get('a')!.data as Float32Array)]).toEqual([1, -2]);
  });

  it('keeps a tensor or metadata key named __proto__ as plain data', () => {
    // A computed key defines an own property instead of setting the prototype.
    const tensors: Record<string, NamedArray> = { ['__proto__']: { dtype: 'U8', shape: [1], data: new Uint8Array([9]) } };
    const meta = JSON.parse('{"__proto__":"x"}') as Record<string, string>;
    const decoded = decodeSafetensors(encodeSafetensors(tensors, meta));
    expect([...decoded.tensors.keys()]).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(decoded.metadata, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(decoded.metadata)).toBe(Object.prototype);
  });
});

describe('byte layout', () => {
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

  it('matches a hand-written file for one F32 tensor [1, 2]', () => {
    const json = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes, padded to 56
    const expected = new Uint8Array([
      56, 0, 0, 0, 0, 0, 0, 0,
      ...ascii(json), 0x20, 0x20,
      0x00, 0x00, 0x80, 0x3f, // 1.0f
      0x00, 0x00, 0x00, 0x40, // 2.0f
    ]);
    expect(encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } })).toEqual(expected);
  });

  it('writes __metadata__ first, then tensors in insertion order', () => {
    const json = '{"__metadata__":{"k":"v"},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[],"data_offsets":[1,2]}}';
    expect(json.length).toBe(129); // padded to 136
    const expected = new Uint8Array([136, 0, 0, 0, 0, 0, 0, 0, ...ascii(json), ...ascii(' '.repeat(7)), 7, 8]);
    const tensors = new Map<string, NamedArray>([
      ['b', { dtype: 'U8', shape: [1], data: new Uint8Array([7]) }],
      ['a', { dtype: 'U8', shape: [], data: new Uint8Array([8]) }],
    ]);
    expect(encodeSafetensors(tensors, { k: 'v' })).toEqual(expected);
  });
});

describe('malformed input', () => {
  const twoTensors = (a: [number, number], b: [number, number], dataBytes: number) =>
    fileWith({ a: f32([(a[1] - a[0]) / 4], ...a), b: f32([(b[1] - b[0]) / 4], ...b) }, dataBytes);

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['empty file', () => new Uint8Array(0), /file is 0 bytes, too short for the 8-byte header length/],
    ['7 bytes', () => new Uint8Array(7), /file is 7 bytes, too short/],
    ['header length larger than the file', () => lengthPrefix(100n, 20), /header length 100 runs past the end of the 28-byte file/],
    ['header length over the cap', () => lengthPrefix(2n ** 40n, 0), /header length 1099511627776 exceeds the 100000000-byte cap/],
    ['header length of u64 max', () => lengthPrefix(2n ** 64n - 1n, 0), /header length 18446744073709551615 exceeds .* cap/],
    ['non-UTF-8 header', () => withHeaderBytes(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /header is not valid UTF-8/],
    ['non-JSON header', () => fileWith('{"a": '), /header is not valid JSON/],
    ['JSON array header', () => fileWith('[]'), /header must be a JSON object, got an array/],
    ['JSON null header', () => fileWith('null'), /header must be a JSON object, got null/],
    ['entry not an object', () => fileWith({ w: 5 }), /tensor 'w': entry must be an object, got 5/],
    ['unknown dtype', () => fileWith({ w: { ...f32([1], 0, 4), dtype: 'F128' } }, 4), /tensor 'w': unknown dtype "F128"/],
    ['dtype not a string', () => fileWith({ w: { ...f32([1], 0, 4), dtype: 4 } }, 4), /tensor 'w': unknown dtype 4/],
    ['missing shape', () => fileWith({ w: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /tensor 'w': missing field 'shape'/],
    ['missing data_offsets', () => fileWith({ w: { dtype: 'F32', shape: [1] } }, 4), /tensor 'w': missing field 'data_offsets'/],
    ['extra field in an entry', () => fileWith({ w: { ...f32([1], 0, 4), offset: 0 } }, 4), /tensor 'w': unknown field 'offset'/],
    ['shape not an array', () => fileWith({ w: { ...f32([1], 0, 4), shape: '1' } }, 4), /tensor 'w': shape must be an array of non-negative integers, got "1"/],
    ['negative dim', () => fileWith({ w: f32([2, -1], 0, 4) }, 4), /tensor 'w': shape must be an array of non-negative integers, got \[2,-1\]/],
    ['fractional dim', () => fileWith({ w: f32([1.5], 0, 4) }, 4), /tensor 'w': shape must be .*got \[1\.5\]/],
    ['dim beyond 2^53', () => fileWith('{"w":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,4]}}', 4), /tensor 'w': shape must be/],
    ['shape product overflow', () => fileWith({ w: f32([2 ** 40, 2 ** 40], 0, 4) }, 4),
      /tensor 'w': data_offsets \[0, 4\] hold 4 bytes but F32 \[1099511627776, 1099511627776\] needs 4835703278458516698824704/],
    ['data_offsets of wrong length', () => fileWith({ w: { ...f32([1], 0, 4), data_offsets: [0] } }, 4), /tensor 'w': data_offsets must be two non-negative integers \[begin, end\], got \[0\]/],
    ['data_offsets not integers', () => fileWith({ w: { ...f32([1], 0, 4), data_offsets: ['0', '4'] } }, 4), /tensor 'w': data_offsets must be two/],
    ['negative data_offsets', () => fileWith({ w: f32([1], -4, 0) }, 4), /tensor 'w': data_offsets must be two non-negative/],
    ['begin after end', () => fileWith({ w: f32([1], 8, 4) }, 8), /tensor 'w': data_offsets \[8, 4\] have begin after end/],
    ['end beyond the data region', () => fileWith({ w: f32([4], 0, 16) }, 12), /tensor 'w': data_offsets \[0, 16\] run past the 12-byte data region/],
    ['byte count mismatch', () => fileWith({ w: f32([2, 2], 0, 12) }, 12), /tensor 'w': data_offsets \[0, 12\] hold 12 bytes but F32 \[2, 2\] needs 16/],
    ['overlapping tensors', () => twoTensors([0, 8], [4, 12], 12), /tensor 'b' \(data_offsets \[4, 12\]\) overlaps tensor 'a', which ends at 8/],
    ['identical offsets', () => twoTensors([0, 8], [0, 8], 8), /overlaps tensor '(a|b)'/],
    ['hole between tensors', () => twoTensors([0, 4], [8, 12], 12), /hole in the data region: bytes \[4, 8\) before tensor 'b' belong to no tensor/],
    ['hole at the start', () => fileWith({ w: f32([1], 4, 8) }, 8), /hole in the data region: bytes \[0, 4\) before tensor 'w'/],
    ['trailing bytes after the last tensor', () => fileWith({ w: f32([1], 0, 4) }, 6), /trailing bytes: data region bytes \[4, 6\) after the last tensor/],
    ['data but no tensors', () => fileWith({}, 4), /trailing bytes: data region bytes \[0, 4\)/],
    ['metadata value not a string', () => fileWith({ __metadata__: { epoch: 3 } }), /__metadata__ value for 'epoch' must be a string, got 3/],
    ['metadata not an object', () => fileWith({ __metadata__: ['a'] }), /__metadata__ must be an object of strings, got \["a"\]/],
    ['duplicate tensor name', () => fileWith(`{"w":${JSON.stringify(f32([1], 0, 4))},"w":${JSON.stringify(f32([1], 4, 8))}}`, 8), /header has duplicate key 'w'/],
    ['duplicate name spelled with an escape', () => fileWith(`{"w":${JSON.stringify(f32([1], 0, 4))},"\\u0077":${JSON.stringify(f32([1], 0, 4))}}`, 4), /header has duplicate key 'w'/],
    ['duplicate field in an entry', () => fileWith('{"w":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}', 4), /header has duplicate key 'dtype'/],
  ];

  it.each(cases)('%s', (_name, build, message) => {
    const bytes = build();
    expect(() => decodeSafetensors(bytes, 'bad.safetensors')).toThrow(new RegExp(`^bad\\.safetensors: .*${message.source}`));
  });

  it('covers at least 20 malformed cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it('does not mistake keys for strings inside arrays or string values', () => {
    const header = '{"__metadata__":{"a":"b","note":"\\"a\\": [\\"x\\"]"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const decoded = decodeSafetensors(fileWith(header, 4));
    expect(decoded.metadata).toEqual({ a: 'b', note: '"a": ["x"]' });
  });

  it('names the file in errors from loadSafetensors and readSafetensorsHeader', () => {
    const path = join(dir, 'bad-file.safetensors');
    writeFileSync(path, fileWith({ w: f32([2, 2], 0, 12) }, 12));
    const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(() => loadSafetensors(path)).toThrow(new RegExp(`^${escaped}: tensor 'w': data_offsets \\[0, 12\\] hold 12 bytes`));
    expect(() => readSafetensorsHeader(path)).toThrow(new RegExp(`^${escaped}: tensor 'w'`));
    const missing = join(dir, 'missing.safetensors');
    expect(() => loadSafetensors(missing)).toThrow(/^.*missing\.safetensors: ENOENT/);
  });
});

describe('hostile headers', () => {
  it('fail fast without allocating the claimed tensor', () => {
    // A consistent entry claiming 1 GiB of F32 in a file that holds 16 bytes of data.
    const bytes = fileWith({ w: f32([2 ** 28], 0, 2 ** 30) }, 16);
    const before = process.memoryUsage().arrayBuffers;
    const start = performance.now();
    expect(() => decodeSafetensors(bytes, 'hostile')).toThrow(/^hostile: tensor 'w': data_offsets \[0, 1073741824\] run past the 16-byte data region/);
    expect(performance.now() - start).toBeLessThan(50);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
  });

  it('are rejected from a file before the header is read', () => {
    const path = join(dir, 'hostile.safetensors');
    writeFileSync(path, lengthPrefix(2n ** 40n, 8));
    const before = process.memoryUsage().arrayBuffers;
    expect(() => readSafetensorsHeader(path)).toThrow(/hostile\.safetensors: header length 1099511627776 exceeds/);
    expect(() => loadSafetensors(path)).toThrow(/hostile\.safetensors: header length 1099511627776 exceeds/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
  });

  it('refuses to load a file over 2 GiB but still lists its header', () => {
    // Sparse file: a valid header for a 2 GiB F32 tensor, then a hole of zeros.
    const path = join(dir, 'huge.safetensors');
    const dataBytes = 2 ** 31;
    const head = fileWith({ big: f32([dataBytes / 4], 0, dataBytes) });
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, head);
      ftruncateSync(fd, head.length + dataBytes);
    } finally {
      closeSync(fd);
    }
    expect(() => loadSafetensors(path)).toThrow(/huge\.safetensors: file is \d+ bytes, larger than the 2 GiB/);
    expect(readSafetensorsHeader(path).tensors.get('big')).toEqual({ dtype: 'F32', shape: [2 ** 29], dataOffsets: [0, dataBytes] });
    rmSync(path);
  });
});

describe('encode validation', () => {
  const u8 = (n: number): NamedArray => ({ dtype: 'U8', shape: [n], data: new Uint8Array(n) });
  const cases: [string, () => unknown, RegExp][] = [
    ['empty name', () => encodeSafetensors({ '': u8(1) }), /tensor names must be non-empty/],
    ['reserved name', () => encodeSafetensors({ __metadata__: u8(1) }), /'__metadata__' is reserved/],
    ['length mismatch', () => encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }), /tensor 'w': data has 3 elements but shape \[2, 2\] needs 4/],
    ['dtype mismatch', () => encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: new Int32Array(1) } }), /tensor 'w': dtype F32 needs Float32Array data, got Int32Array/],
    ['F16 needs raw bits', () => encodeSafetensors({ w: { dtype: 'F16', shape: [1], data: new Float32Array(1) } }), /dtype F16 needs Uint16Array data/],
    ['unknown dtype', () => encodeSafetensors({ w: { dtype: 'F8' as 'U8', shape: [1], data: new Uint8Array(1) } }), /unknown dtype "F8"/],
    ['bad shape', () => encodeSafetensors({ w: { dtype: 'U8', shape: [-1], data: new Uint8Array(1) } }), /shape must be an array of non-negative integers/],
    ['non-string metadata', () => encodeSafetensors({ w: u8(1) }, { step: 3 as unknown as string }), /metadata value for 'step' must be a string/],
  ];
  it.each(cases)('rejects %s', (_name, run, message) => {
    expect(run).toThrow(new RegExp(`^encodeSafetensors: .*${message.source}`));
  });
});

describe('atomic save', () => {
  const old = (): Record<string, NamedArray> => ({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
  const tempFiles = (d: string) => readdirSync(d).filter((f) => f.includes('.tmp-'));

  function freshDir(name: string): string {
    const d = join(dir, name);
    mkdirSync(d);
    return d;
  }

  it('replaces an existing file and leaves no temp file', () => {
    const d = freshDir('replace');
    const path = join(d, 'ckpt.safetensors');
    saveSafetensors(path, old());
    const next = { v: { dtype: 'I32', shape: [3], data: new Int32Array([4, 5, 6]) } } satisfies Record<string, NamedArray>;
    saveSafetensors(path, next, { step: '2' });
    const loaded = loadSafetensors(path);
    expectSameTensors(loaded.tensors, next);
    expect(loaded.metadata).toEqual({ step: '2' });
    expect(readdirSync(d)).toEqual(['ckpt.safetensors']);
  });

  it('leaves the old file untouched when validation fails, creating no temp file', () => {
    const d = freshDir('invalid');
    const path = join(d, 'ckpt.safetensors');
    saveSafetensors(path, old());
    const before = readFileSync(path);
    const broken = { w: { dtype: 'F32', shape: [4], data: new Float32Array(3) } } satisfies Record<string, NamedArray>;
    expect(() => saveSafetensors(path, broken)).toThrow(/ckpt\.safetensors: tensor 'w': data has 3 elements but shape \[4\] needs 4/);
    expect(readFileSync(path)).toEqual(before);
    expect(readdirSync(d)).toEqual(['ckpt.safetensors']);
  });

  it('removes the temp file when the final rename fails', () => {
    const d = freshDir('rename-fails');
    const path = join(d, 'ckpt.safetensors');
    mkdirSync(path); // a directory cannot be replaced by a file: the write succeeds, the rename fails
    expect(() => saveSafetensors(path, old())).toThrow(/ckpt\.safetensors: E(ISDIR|EXIST|NOTEMPTY|PERM)/);
    expect(tempFiles(d)).toEqual([]);
    expect(statSync(path).isDirectory()).toBe(true);
  });

  it('keeps the previous checkpoint loadable when the writer is killed mid-write', async () => {
    const d = freshDir('killed');
    const path = join(d, 'ckpt.safetensors');
    const previous = old();
    saveSafetensors(path, previous, { step: '1' });

    // The child cannot import TypeScript: transpile the codec, its half-precision helpers and the file writer to plain ESM.
    for (const name of ['safetensors', 'half', 'safetensors_file']) {
      const sourcePath = fileURLToPath(new URL(`../src/io/${name}.ts`, import.meta.url));
      const js = ts.transpileModule(readFileSync(sourcePath, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      writeFileSync(join(dir, `${name}.js`), js);
    }
    const modulePath = join(dir, 'safetensors_file.js');
    const script = `
      import { saveSafetensors } from ${JSON.stringify(pathToFileURL(modulePath).href)};
      const data = new Float32Array(64 * 1024 * 1024).fill(0.5); // 256 MiB: long enough to kill mid-write
      saveSafetensors(process.env.TARGET, { big: { dtype: 'F32', shape: [data.length], data } }, { step: '2' });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, TARGET: path },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));

    // Kill as soon as the temp file appears, i.e. while the child is still writing it.
    const deadline = Date.now() + 30_000;
    while (tempFiles(d).length === 0) {
      if (child.exitCode !== null) throw new Error(`child exited early (${child.exitCode}): ${stderr}`);
      if (Date.now() > deadline) throw new Error('child never started writing');
      await new Promise((resolve) => setImmediate(resolve));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const loaded = loadSafetensors(path);
    expectSameTensors(loaded.tensors, previous);
    expect(loaded.metadata).toEqual({ step: '1' });
    const leftovers = readdirSync(d).filter((f) => f !== 'ckpt.safetensors');
    expect(leftovers.length).toBeLessThanOrEqual(1);
    for (const f of leftovers) {
      expect(f).toMatch(/^ckpt\.safetensors\.tmp-\d+-[0-9a-f]{12}$/);
      // A partial temp file is itself rejected, never mistaken for a checkpoint.
      if (statSync(join(d, f)).size < 2 ** 28) expect(() => loadSafetensors(join(d, f))).toThrow(/too short|runs past|run past/);
    }
    expect(existsSync(path)).toBe(true);
  });
});
