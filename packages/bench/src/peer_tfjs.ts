/**
 * TensorFlow.js with its WebGPU backend, in this process, on the Dawn instance Transfuse uses (so
 * the same adapter). The backend registers itself at import time only if `navigator.gpu`
 * exists, so navigator is set first; it then asks that GPU object for its own adapter and device.
 */
import { awaitGpu, type AcquiredDevice } from '@transfuse/core';
import type { Tf } from './types.js';

export interface TfjsPeer {
  tf: Tf;
  /** Submits tfjs's pending commands and waits for the GPU to finish them. */
  sync(): Promise<void>;
  /** What tfjs runs on, e.g. its adapter's description. */
  label: string;
}

/** The parts of tfjs's WebGPUBackend the runner needs. */
interface WebGpuBackendLike {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  adapterInfo?: { description?: string; architecture?: string; vendor?: string };
}

/** Loads tfjs on the same `webgpu` GPU object as Transfuse, or says why it cannot. */
export async function loadTfjs(acquired: AcquiredDevice): Promise<TfjsPeer | { error: string }> {
  const { gpu, compatibility } = acquired;
  // In compatibility mode (Dawn's OpenGL backend) an adapter exists only for that feature level.
  const navGpu = compatibility
    ? { requestAdapter: (o?: GPURequestAdapterOptions) => gpu.requestAdapter({ ...o, featureLevel: 'compatibility' }), getPreferredCanvasFormat: () => 'rgba8unorm' }
    : gpu;
  const nav = (globalThis as { navigator?: object }).navigator ?? {};
  Object.defineProperty(globalThis, 'navigator', { value: { ...nav, gpu: navGpu }, configurable: true, writable: true });
  let tf: Tf;
  try {
    const core = (await import('@tensorflow/tfjs-core')) as Tf & { default?: Tf };
    tf = core.default ?? core;
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    return { error: `could not load @tensorflow/tfjs-core / tfjs-backend-webgpu: ${(e as Error).message}` };
  }
  try {
    if (!(await tf.setBackend('webgpu'))) return { error: "tf.setBackend('webgpu') returned false (no adapter for tfjs)" };
    await tf.ready();
  } catch (e) {
    return { error: `tfjs's WebGPU backend failed to start: ${(e as Error).message}` };
  }
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const info = backend.adapterInfo;
  return {
    tf,
    label: `tfjs ${tf.version_core} webgpu (${info?.description || info?.architecture || 'its own device on the same adapter'})`,
    async sync() {
      // What tfjs does itself before a readback: close the open pass, then submit.
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      // Waited for as Transfuse's sync() waits (without spinning a core), so the ratio compares
      // the kernels, not the waiting.
      await awaitGpu(backend.device.queue.onSubmittedWorkDone());
    },
  };
}
