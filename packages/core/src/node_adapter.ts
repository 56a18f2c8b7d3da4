/**
 * Node-only adapter discovery through Dawn (the `webgpu` npm package). Kept apart from device.ts
 * so that a browser build never loads node: modules.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Attempt, BackendName, DeviceOptions, FoundAdapter } from './device.js';

/** Walks up from `start` looking for .transfuse/lavapipe/lvp_icd.json (written by scripts/setup.sh). */
function findLavapipeIcd(): string | undefined {
  const env = process.env.TRANSFUSE_LAVAPIPE_ICD;
  if (env) return existsSync(env) ? env : undefined;
  const starts = [process.cwd(), dirname(fileURLToPath(import.meta.url))];
  for (const start of starts) {
    let dir = resolve(start);
    for (;;) {
      const icd = join(dir, '.transfuse', 'lavapipe', 'lvp_icd.json');
      if (existsSync(icd)) return icd;
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return undefined;
}

/**
 * V8's gc(): the one from --expose-gc if Node was started with it, else obtained by setting the
 * flag at run time (a fresh context then sees the function). Undefined if neither works.
 */
function gcFunction(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as () => void) : undefined;
  } catch {
    return undefined;
  }
}

export async function nodeAdapter(
  backend: BackendName,
  options: DeviceOptions,
  tried: Attempt[],
): Promise<FoundAdapter | undefined> {
  let webgpu: typeof import('webgpu');
  try {
    webgpu = await import('webgpu');
  } catch (e) {
    tried.push({ label: "the 'webgpu' npm package (Dawn)", outcome: `could not be loaded: ${(e as Error).message}` });
    return undefined;
  }
  Object.assign(globalThis, webgpu.globals);
  // Mesa prints an error line without a runtime dir; any writable folder does.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const power = options.powerPreference ?? 'high-performance';

  const tryVulkan = async (label: string) => {
    const gpu = webgpu.create(['backend=vulkan']);
    const adapter = await gpu.requestAdapter({ powerPreference: power });
    tried.push({ label, outcome: adapter ? 'found' : 'no adapter' });
    return adapter ? { gpu, adapter, label, compatibility: false } : undefined;
  };
  const tryLavapipe = async () => {
    const icd = findLavapipeIcd();
    if (!icd) {
      tried.push({ label: 'vulkan (lavapipe)', outcome: 'no .transfuse/lavapipe/lvp_icd.json (run `npm run setup`)' });
      return undefined;
    }
    // The Vulkan loader reads VK_DRIVER_FILES when Dawn creates its Vulkan instance.
    process.env.VK_DRIVER_FILES = icd;
    return tryVulkan(`vulkan (lavapipe at ${icd})`);
  };
  const tryOpenGL = async () => {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    const gpu = webgpu.create(['backend=opengl']);
    const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility', powerPreference: power });
    const label = 'opengl (compatibility mode)';
    tried.push({ label, outcome: adapter ? 'found' : 'no adapter' });
    return adapter ? { gpu, adapter, label, compatibility: true } : undefined;
  };

  const find = async (): Promise<FoundAdapter | undefined> => {
    switch (backend) {
      case 'vulkan':
        return (await tryVulkan('vulkan (system driver)')) ?? (await tryLavapipe());
      case 'lavapipe':
        return tryLavapipe();
      case 'opengl':
        return tryOpenGL();
      default: {
        // The system's default adapter first: with a GPU driver installed this is the GPU.
        const sys = process.env.VK_DRIVER_FILES ? undefined : await tryVulkan('vulkan (system driver)');
        return sys ?? (await tryLavapipe()) ?? (await tryOpenGL());
      }
    }
  };
  const found = await find();
  return found && { ...found, collectGarbage: gcFunction() };
}

