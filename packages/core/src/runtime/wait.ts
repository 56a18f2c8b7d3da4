/** Waiting on the GPU from Node without busy-polling a core. */
/**
 * Awaits a WebGPU promise (onSubmittedWorkDone, mapAsync) without spinning a core. While such a
 * promise is pending, Dawn's Node binding polls for its completion on every turn of the event
 * loop, which on a software driver takes a CPU core from the driver's own worker threads (on the
 * 2-core machines here, a matmul 1024 step spent 45% of its time with the main thread busy
 * polling). So between turns the main thread sleeps, briefly at first so short waits stay short,
 * then up to 1 ms. In browsers, where the main thread may not block, the promise is awaited as is.
 */
const sleepCell = typeof SharedArrayBuffer === 'function' && typeof setImmediate === 'function' && typeof process !== 'undefined' && process.versions?.node
  ? new Int32Array(new SharedArrayBuffer(4))
  : null;
export async function awaitGpu<T>(p: Promise<T>): Promise<T> {
  if (!sleepCell) return p;
  let settled = false;
  const done = () => { settled = true; };
  p.then(done, done);
  for (let turn = 0; !settled; turn++) {
    await new Promise((r) => setImmediate(r));
    if (!settled && turn >= 4) Atomics.wait(sleepCell, 0, 0, Math.min(1, 0.05 * 2 ** (turn - 4)));
  }
  return p;
}
