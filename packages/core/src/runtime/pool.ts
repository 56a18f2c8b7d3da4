/** GPU storage: reference-counted buffers and the pool that recycles them by size class. */
import type { Runtime } from './runtime.js';

/** A GPU buffer with a reference count; tensors that are views of each other share one. */
export class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    /** Bytes in use (the buffer itself may be larger: pool size classes). */
    readonly bytes: number,
    private readonly runtime: Runtime,
  ) {}
  retain(): this {
    if (this.refs <= 0) throw new Error('internal: retain of a released storage');
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) this.runtime.pool.release(this.buffer);
  }
}

/** Size classes of four steps per octave (at most 25% waste), 256 bytes minimum. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  for (const step of [1, 1.25, 1.5, 1.75, 2]) {
    const c = p * step;
    if (c >= bytes) return c;
  }
  return 2 * p;
}

export interface PoolStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  liveBytes: number;
  /** Buffers kept for reuse. */
  pooledBuffers: number;
  pooledBytes: number;
}

/** Free lists of storage buffers keyed by size class. */
export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private live = new Set<GPUBuffer>();
  private stats = { liveBytes: 0, pooledBuffers: 0, pooledBytes: 0 };
  /** Pooled bytes above this are destroyed instead of kept. */
  maxPooledBytes = 1 << 30;

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: GPUBufferUsageFlags,
    private readonly onDestroy: (b: GPUBuffer) => void,
  ) {}

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) {
      this.stats.pooledBuffers--;
      this.stats.pooledBytes -= size;
    } else {
      buf = this.device.createBuffer({ size, usage: this.usage });
    }
    this.live.add(buf);
    this.stats.liveBytes += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    if (!this.live.delete(buf)) throw new Error('internal: buffer released twice');
    this.stats.liveBytes -= buf.size;
    if (this.stats.pooledBytes + buf.size > this.maxPooledBytes) {
      this.onDestroy(buf);
      return;
    }
    let list = this.free.get(buf.size);
    if (!list) this.free.set(buf.size, (list = []));
    list.push(buf);
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += buf.size;
  }

  /** Destroys every pooled buffer (after pending work is submitted). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) this.onDestroy(b);
    this.free.clear();
    this.stats.pooledBuffers = 0;
    this.stats.pooledBytes = 0;
  }

  getStats(): PoolStats {
    return { liveBuffers: this.live.size, ...this.stats };
  }
}
