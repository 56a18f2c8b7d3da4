/**
 * The runtime owns the device: a buffer pool by size class, the pipeline cache, and one open
 * command encoder into which every dispatch is recorded. Work is submitted in batches (when the
 * uniform ring is full, before an upload, or before a readback), never once per op.
 *
 * Ordering argument that makes pooling safe without fences: all GPU work goes through one queue
 * in submission order, so a buffer released in JS and handed to the next op is written only after
 * every earlier dispatch that read it. The exception is `queue.writeBuffer`, which runs before
 * the not-yet-submitted encoder: uploads therefore flush the open batch first.
 */
import type { Kernel, Params } from '@transfuse/kernels';
import type { AcquiredDevice } from '../device.js';
import { BufferPool, Storage } from './pool.js';
import { Profiler } from './profiler.js';
import { awaitGpu } from './wait.js';

/** Bytes reserved per dispatch in the uniform ring (WebGPU's minUniformBufferOffsetAlignment is at most 256). */
const UNIFORM_SLOT = 256;
/** Dispatches per batch before a submit. */
const RING_SLOTS = 256;
/** Bind groups kept for reuse (least recently used ones are dropped first). */
const BIND_GROUP_CACHE = 4096;
/** Submits a training loop may run ahead of the GPU before keepPace() waits. */
const PACE_SUBMITS = 8;
/**
 * New bind groups between forced garbage collections. Lavapipe maps one 4 KiB memfd per live
 * descriptor set, and Linux allows 65,530 mappings per process (vm.max_map_count): long training
 * runs crashed inside the driver once uncollected bind groups piled up past that.
 */
const GC_EVERY_BIND_GROUPS = 8192;

export interface DispatchArgs {
  /** What the user called, for error messages ('matmul', 'add', ...). */
  op: string;
  params?: Params;
  inputs: Storage[];
  outputs: Storage[];
  workgroups: [number, number?, number?];
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

export class Runtime {
  readonly device: GPUDevice;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  readonly pool: BufferPool;
  private readonly staging: BufferPool;
  private readonly pipelines = new Map<Kernel, CachedPipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly ring: GPUBuffer;
  private readonly ringData = new ArrayBuffer(UNIFORM_SLOT * RING_SLOTS);
  private readonly ringView = new DataView(this.ringData);
  private ringUsed = 0;
  /** Ops recorded in the open batch, named in errors. */
  private batchOps: string[] = [];
  private toDestroy: GPUBuffer[] = [];
  private error: Error | null = null;
  private lostInfo: GPUDeviceLostInfo | null = null;
  /** Submit after every dispatch so an error names exactly one op (TRANSFUSE_SYNC=1). */
  syncEachOp: boolean;
  /** Fill every newly acquired output with NaN so tests catch elements a kernel never writes. */
  poisonOutputs = false;
  private profiler: Profiler | null = null;
  /**
   * Bind groups by kernel and bound buffers. Creating one per dispatch cost time and, on Dawn's
   * Vulkan backend, descriptor sets that live until the JS object is garbage-collected, which
   * Node may not do for a long while: training runs crashed inside lavapipe (see
   * GC_EVERY_BIND_GROUPS). Pooled buffers recur, so training loops mostly hit this cache.
   */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private bindGroupsSinceGc = 0;
  private paceMark: { submits: number; done: Promise<undefined> } | null = null;
  /** Counters for benchmarks and tests. */
  readonly counters = { dispatches: 0, submits: 0, readbacks: 0, bindGroups: 0, bindGroupsCollected: 0 };
  private readonly bindGroupFinalizer = new FinalizationRegistry<null>(() => this.counters.bindGroupsCollected++);

  constructor(readonly acquired: AcquiredDevice) {
    const device = (this.device = acquired.device);
    this.limits = device.limits;
    this.features = new Set([...device.features] as string[]);
    const destroy = (b: GPUBuffer) => {
      // Rare (pool trims and overflow): drop every cached bind group rather than track which use b.
      this.bindGroups.clear();
      this.toDestroy.push(b);
    };
    this.pool = new BufferPool(device, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, destroy);
    this.staging = new BufferPool(device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, destroy);
    this.ring = device.createBuffer({ size: this.ringData.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.syncEachOp = typeof process !== 'undefined' && process.env?.TRANSFUSE_SYNC === '1';
    device.lost.then((info) => {
      this.lostInfo = info;
    });
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.error ??= new Error(`WebGPU error outside any op: ${e.message}`);
    });
  }

  /** Throws the first asynchronous GPU error, or device loss, seen so far. */
  checkHealthy(): void {
    if (this.lostInfo) {
      throw new Error(`WebGPU device lost (${this.lostInfo.reason}): ${this.lostInfo.message}. Re-run init() to get a new device.`);
    }
    if (this.error) {
      const e = this.error;
      this.error = null;
      throw e;
    }
  }

  /** A storage buffer for `bytes` bytes, checked against the adapter's limits. */
  alloc(bytes: number, what: string): Storage {
    this.checkHealthy();
    const max = Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
    if (bytes > max) {
      throw new Error(
        `${what} needs ${bytes} bytes, more than this adapter's maxStorageBufferBindingSize (${max} bytes); ` +
          `split the work into smaller tensors`,
      );
    }
    const s = new Storage(this.pool.acquire(Math.max(bytes, 4)), bytes, this);
    if (this.poisonOutputs) this.fillNaN(s);
    return s;
  }

  private fillNaN(s: Storage): void {
    this.flush();
    const words = new Uint32Array(s.buffer.size / 4).fill(0x7fc00000);
    this.device.queue.writeBuffer(s.buffer, 0, words);
  }

  /** Copies `data` into the buffer; flushes first so earlier recorded work sees the old contents. */
  upload(s: Storage, data: ArrayBufferView, byteOffset = 0): void {
    this.checkHealthy();
    this.flush();
    const bytes = data.byteLength;
    // writeBuffer needs a multiple of 4 bytes.
    if (bytes % 4 !== 0) throw new Error(`internal: upload of ${bytes} bytes is not a multiple of 4`);
    this.device.queue.writeBuffer(s.buffer, byteOffset, data.buffer, data.byteOffset, bytes);
  }

  private pipelineFor(k: Kernel, op: string): CachedPipeline {
    let p = this.pipelines.get(k);
    if (p) return p;
    for (const f of k.features) {
      if (!this.features.has(f)) throw new Error(`${op}: kernel '${k.name}' needs the '${f}' feature, which this adapter lacks`);
    }
    const [x, y, z] = k.workgroupSize;
    const L = this.limits;
    if (x * y * z > L.maxComputeInvocationsPerWorkgroup || x > L.maxComputeWorkgroupSizeX || y > L.maxComputeWorkgroupSizeY) {
      throw new Error(
        `${op}: kernel '${k.name}' uses workgroup ${x}x${y}x${z}, over this adapter's limit of ` +
          `${L.maxComputeInvocationsPerWorkgroup} invocations (${L.maxComputeWorkgroupSizeX}x${L.maxComputeWorkgroupSizeY})`,
      );
    }
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: k.wgsl, label: k.name });
    const layout = this.device.createBindGroupLayout({ entries: k.layout as GPUBindGroupLayoutEntry[], label: k.name });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
      label: k.name,
    });
    this.device.popErrorScope().then((e) => {
      if (e) this.error ??= new Error(`${op}: kernel '${k.name}' failed to compile: ${e.message}`);
    });
    p = { pipeline, layout };
    this.pipelines.set(k, p);
    return p;
  }

  /** Records one dispatch into the open batch. */
  dispatch(k: Kernel, a: DispatchArgs): void {
    this.checkHealthy();
    if (a.inputs.length !== k.inputs.length || a.outputs.length !== k.outputs.length) {
      throw new Error(
        `internal: ${a.op}: kernel '${k.name}' takes ${k.inputs.length} inputs and ${k.outputs.length} outputs, ` +
          `got ${a.inputs.length} and ${a.outputs.length}`,
      );
    }
    const [wx, wy = 1, wz = 1] = a.workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (wx > maxWg || wy > maxWg || wz > maxWg) {
      throw new Error(`${a.op}: ${wx}x${wy}x${wz} workgroups exceed this adapter's limit of ${maxWg} per dimension`);
    }
    if (wx === 0 || wy === 0 || wz === 0) return;
    const { pipeline, layout } = this.pipelineFor(k, a.op);
    if (k.uniformSize > UNIFORM_SLOT) throw new Error(`internal: kernel '${k.name}' uniform of ${k.uniformSize} bytes > ${UNIFORM_SLOT}`);
    if (this.ringUsed === RING_SLOTS) this.flush();
    if (!this.encoder) this.begin();
    const offsets: number[] = [];
    if (k.uniformSize > 0) {
      const offset = this.ringUsed * UNIFORM_SLOT;
      k.packParams(a.params ?? {}, this.ringView, offset);
      offsets.push(offset);
      this.ringUsed++;
    }
    const group = this.bindGroupFor(k, layout, [...a.inputs, ...a.outputs]);
    if (this.profiler) this.profiler.beginDispatch(this, k.name);
    this.pass!.setPipeline(pipeline);
    this.pass!.setBindGroup(0, group, offsets);
    this.pass!.dispatchWorkgroups(wx, wy, wz);
    this.batchOps.push(a.op);
    this.counters.dispatches++;
    if (this.syncEachOp) this.flush();
  }

  private bindGroupFor(k: Kernel, layout: GPUBindGroupLayout, storages: Storage[]): GPUBindGroup {
    // Whole buffers are bound (no kernel reads past its tensor: none uses arrayLength), so a
    // buffer reused for a tensor of another size still hits the cache.
    const key = `${k.name}|${storages.map((s) => this.bufferId(s.buffer)).join(',')}`;
    let group = this.bindGroups.get(key);
    if (group) {
      this.bindGroups.delete(key); // re-inserted below: Map order is the recency order
    } else {
      const entries: GPUBindGroupEntry[] = [];
      if (k.uniformSize > 0) entries.push({ binding: 0, resource: { buffer: this.ring, offset: 0, size: k.uniformSize } });
      // A size class may exceed the binding limit that its tensor respects (alloc checks it).
      const maxBinding = Math.floor(this.limits.maxStorageBufferBindingSize / 16) * 16;
      for (const s of storages) entries.push({ binding: entries.length, resource: { buffer: s.buffer, size: Math.min(s.buffer.size, maxBinding) } });
      group = this.device.createBindGroup({ layout, entries });
      this.counters.bindGroups++;
      this.bindGroupFinalizer.register(group, null);
      if (this.bindGroups.size >= BIND_GROUP_CACHE) this.bindGroups.delete(this.bindGroups.keys().next().value!);
      // Dropped groups are freed when V8 collects them (and the event loop next turns).
      if (++this.bindGroupsSinceGc >= GC_EVERY_BIND_GROUPS) {
        this.bindGroupsSinceGc = 0;
        this.acquired.collectGarbage?.();
      }
    }
    this.bindGroups.set(key, group);
    return group;
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  private begin(): void {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    this.encoder = this.device.createCommandEncoder();
    this.pass = this.encoder.beginComputePass();
  }

  /** @internal the profiler records each dispatch in its own timed pass */
  beginTimedPass(writes: GPUComputePassTimestampWrites): void {
    if (!this.encoder) this.begin();
    this.pass?.end();
    this.pass = this.encoder!.beginComputePass({ timestampWrites: writes });
  }

  /**
   * Starts timing every kernel with GPU timestamp queries (adapters with 'timestamp-query');
   * each dispatch then runs in its own compute pass, so use it to find hot kernels, not to time
   * a whole workload. Read the totals with `profileReport()` after `await sync()`.
   */
  startProfiling(): void {
    if (!this.features.has('timestamp-query')) throw new Error("startProfiling: this adapter lacks 'timestamp-query'");
    this.flush();
    this.profiler = new Profiler(this.device, RING_SLOTS);
  }

  /** Kernel name → total GPU milliseconds and dispatch count since startProfiling(), slowest first. */
  async profileReport(): Promise<{ kernel: string; ms: number; count: number }[]> {
    if (!this.profiler) throw new Error('profileReport: call startProfiling() first');
    await this.sync();
    await this.profiler.settled();
    return [...this.profiler.totals].map(([kernel, t]) => ({ kernel, ...t })).sort((a, b) => b.ms - a.ms);
  }

  private endPass(): GPUCommandEncoder {
    if (!this.encoder) this.begin();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return this.encoder!;
  }

  /** Submits the open batch (if any). */
  flush(): void {
    if (!this.encoder) return;
    const encoder = this.endPass();
    this.profiler?.resolve(encoder);
    if (this.ringUsed > 0) this.device.queue.writeBuffer(this.ring, 0, this.ringData, 0, this.ringUsed * UNIFORM_SLOT);
    this.device.queue.submit([encoder.finish()]);
    this.profiler?.collect();
    this.counters.submits++;
    const ops = this.batchOps;
    const report = (kind: string) => (e: GPUError | null) => {
      if (!e) return;
      const names = [...new Set(ops)].join(', ');
      this.error ??= new Error(`WebGPU ${kind} error in a batch of ops [${names}]: ${e.message} (set TRANSFUSE_SYNC=1 to name the exact op)`);
    };
    this.device.popErrorScope().then(report('out-of-memory'));
    this.device.popErrorScope().then(report('validation'));
    this.encoder = null;
    this.ringUsed = 0;
    this.batchOps = [];
    for (const b of this.toDestroy) b.destroy();
    this.toDestroy = [];
  }

  /** Reads `bytes` bytes of a storage buffer back to the CPU. */
  async read(s: Storage, bytes = s.bytes, byteOffset = 0): Promise<ArrayBuffer> {
    this.checkHealthy();
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.staging.acquire(size);
    const encoder = this.endPass();
    encoder.copyBufferToBuffer(s.buffer, byteOffset, staging, 0, size);
    this.batchOps.push('readback');
    this.flush();
    this.counters.readbacks++;
    try {
      await awaitGpu(staging.mapAsync(GPUMapMode.READ, 0, size));
    } catch (e) {
      this.checkHealthy();
      throw new Error(`readback failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.staging.release(staging);
    this.checkHealthy();
    return out;
  }

  /**
   * Call once per step of a loop that reads nothing back for many steps (training). Every few
   * submits it waits for the work submitted at its previous wait, so the GPU stays busy while
   * JS never runs more than one window ahead of it. Waiting also turns the event loop, which
   * Dawn's Node binding needs in order to learn what has finished and free what it holds (bind
   * groups are freed only then): a loop that never awaits grows native memory until the driver
   * fails.
   */
  async keepPace(): Promise<void> {
    if (this.counters.submits - (this.paceMark?.submits ?? 0) < PACE_SUBMITS) return;
    this.flush();
    const previous = this.paceMark?.done;
    this.paceMark = { submits: this.counters.submits, done: this.device.queue.onSubmittedWorkDone() };
    if (previous) await awaitGpu(previous);
    else await new Promise((r) => setTimeout(r, 0));
    this.checkHealthy();
  }

  /** Resolves when the GPU has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await awaitGpu(this.device.queue.onSubmittedWorkDone());
    this.checkHealthy();
  }

  destroy(): void {
    this.flush();
    this.pool.trim();
    this.staging.trim();
    this.flush();
    this.device.destroy();
  }
}
