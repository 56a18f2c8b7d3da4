/**
 * The process-wide runtime. `await init()` once (idempotent); every op then runs on that device.
 */
import { acquireDevice, type DeviceOptions } from '../device.js';
import type { PoolStats } from './pool.js';
import { Runtime } from './runtime.js';

let current: Runtime | null = null;
let pending: Promise<Runtime> | null = null;

/** Finds an adapter and opens the device; later calls return the same runtime. */
export function init(options: DeviceOptions = {}): Promise<Runtime> {
  if (current) return Promise.resolve(current);
  pending ??= acquireDevice(options).then(
    (acq) => (current = new Runtime(acq)),
    (e) => {
      pending = null;
      throw e;
    },
  );
  return pending;
}

export function runtime(): Runtime {
  if (!current) throw new Error('Transfuse is not initialised: call `await init()` before creating tensors');
  return current;
}

/** Releases the device (tests call this in afterAll so Dawn lets the process exit). */
export function shutdown(): void {
  current?.destroy();
  current = null;
  pending = null;
}

export interface MemoryInfo extends PoolStats {
  /** Tensor objects not yet disposed (saved-for-backward handles included). */
  tensors: number;
}

let liveTensorCount = 0;
export const tensorCounter = {
  inc(): void {
    liveTensorCount++;
  },
  dec(): void {
    liveTensorCount--;
  },
};

/** Live tensors and the buffer pool's state: tests use it to prove that a loop leaks nothing. */
export function memory(): MemoryInfo {
  return { tensors: liveTensorCount, ...runtime().pool.getStats() };
}
