/** GPU timestamp profiling of every dispatch (Runtime.startProfiling). */
import type { Runtime } from './runtime.js';

/** Timestamp queries around each dispatch of a batch, summed per kernel name. */
export class Profiler {
  readonly totals = new Map<string, { ms: number; count: number }>();
  private readonly querySet: GPUQuerySet;
  private names: string[] = [];
  private pending: Promise<void>[] = [];

  constructor(
    private readonly device: GPUDevice,
    private readonly capacity: number,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * capacity });
  }

  beginDispatch(rt: Runtime, name: string): void {
    if (this.names.length === this.capacity) rt.flush();
    const i = this.names.length;
    this.names.push(name);
    rt.beginTimedPass({ querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 });
  }

  private resolved: { buffer: GPUBuffer; scratch: GPUBuffer; names: string[] } | null = null;

  resolve(encoder: GPUCommandEncoder): void {
    if (this.names.length === 0) return;
    const bytes = 16 * this.names.length;
    const resolveBuf = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readBuf = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, 2 * this.names.length, resolveBuf, 0);
    encoder.copyBufferToBuffer(resolveBuf, 0, readBuf, 0, bytes);
    this.resolved = { buffer: readBuf, scratch: resolveBuf, names: this.names };
    this.names = [];
  }

  collect(): void {
    const r = this.resolved;
    if (!r) return;
    this.resolved = null;
    r.scratch.destroy(); // after the submit that used it
    this.pending.push(
      r.buffer.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigUint64Array(r.buffer.getMappedRange());
        r.names.forEach((name, i) => {
          const e = this.totals.get(name) ?? { ms: 0, count: 0 };
          e.ms += Number(t[2 * i + 1] - t[2 * i]) / 1e6;
          e.count++;
          this.totals.set(name, e);
        });
        r.buffer.unmap();
        r.buffer.destroy();
      }),
    );
  }

  async settled(): Promise<void> {
    await Promise.all(this.pending);
    this.pending = [];
  }
}
