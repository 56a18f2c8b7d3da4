/**
 * Node-only adapter discovery through Dawn (the `webgpu` npm package). Kept apart from device.ts
 * so that a browser build never loads node: modules.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isSoftwareAdapter, type Attempt, type BackendName, type DeviceOptions, type FoundAdapter } from './device.js';

/**
 * The lavapipe ICD: $TRANSFUSE_LAVAPIPE_ICD (which must exist: a wrong path is an error, never a
 * silent fallback), else .transfuse/lavapipe/lvp_icd.json (written by scripts/setup.sh) found by
 * walking up from the working directory and from this package.
 */
function findLavapipeIcd(): { icd: string } | { missing: string; error: boolean } {
  const env = process.env.TRANSFUSE_LAVAPIPE_ICD;
  if (env) return existsSync(env) ? { icd: env } : { missing: `TRANSFUSE_LAVAPIPE_ICD=${env} does not exist`, error: true };
  const starts = [process.cwd(), dirname(fileURLToPath(import.meta.url))];
  for (const start of starts) {
    let dir = resolve(start);
    for (;;) {
      const icd = join(dir, '.transfuse', 'lavapipe', 'lvp_icd.json');
      if (existsSync(icd)) return { icd };
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return { missing: `no .transfuse/lavapipe/lvp_icd.json above ${process.cwd()} (run \`npm run setup\` in a Transfuse checkout, or set TRANSFUSE_LAVAPIPE_ICD)`, error: false };
}

/**
 * Whether a hardware Vulkan driver could find a device: on Linux it needs a GPU device node
 * (/dev/dri/renderD*, /dev/nvidia*, or /dev/dxg under WSL). Without one, probing the system's
 * drivers reaches only CPU ones, and Dawn writes a warning to stderr for each it rejects (from
 * native code, so it cannot be filtered). Other systems: assumed yes.
 */
function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  const entries = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  return existsSync('/dev/dxg') || entries('/dev/dri').some((n) => n.startsWith('renderD')) || entries('/dev').some((n) => n.startsWith('nvidia'));
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
    const what = adapter ? `${adapter.info.vendor || '?'} ${adapter.info.description || adapter.info.device || ''}`.trim() : '';
    tried.push({ label, outcome: adapter ? `found ${what}` : 'no adapter' });
    return adapter ? { gpu, adapter, label, compatibility: false } : undefined;
  };
  // A TRANSFUSE_LAVAPIPE_ICD that does not exist: an error, never a silent fall to OpenGL.
  let badIcd = false;
  const tryLavapipe = async () => {
    const found = findLavapipeIcd();
    if (!('icd' in found)) {
      tried.push({ label: 'vulkan (lavapipe)', outcome: found.missing });
      badIcd = found.error;
      return undefined;
    }
    // The Vulkan loader reads VK_DRIVER_FILES when Dawn creates its Vulkan instance.
    const before = process.env.VK_DRIVER_FILES;
    process.env.VK_DRIVER_FILES = found.icd;
    const lvp = await tryVulkan(`vulkan (lavapipe at ${found.icd})`);
    if (!lvp) {
      if (before === undefined) delete process.env.VK_DRIVER_FILES;
      else process.env.VK_DRIVER_FILES = before;
    }
    return lvp;
  };
  const tryOpenGL = async () => {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    const gpu = webgpu.create(['backend=opengl']);
    const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility', powerPreference: power });
    const label = 'opengl (compatibility mode)';
    tried.push({ label, outcome: adapter ? 'found' : 'no adapter' });
    return adapter ? { gpu, adapter, label, compatibility: true } : undefined;
  };
  // What a forced 'vulkan' must not silently become: a CPU implementation.
  const gpuOnly = (found: FoundAdapter | undefined): FoundAdapter | undefined => {
    if (!found || !isSoftwareAdapter(found.adapter.info)) return found;
    tried[tried.length - 1].outcome += ' — a CPU implementation, not a GPU driver (TRANSFUSE_BACKEND=lavapipe runs on it)';
    return undefined;
  };
  const say = (line: string) => process.stderr.write(`transfuse: ${line}\n`);

  const find = async (): Promise<FoundAdapter | undefined> => {
    switch (backend) {
      case 'vulkan':
        return gpuOnly(await tryVulkan('vulkan (system driver)'));
      case 'lavapipe':
        return tryLavapipe();
      case 'opengl':
        return tryOpenGL();
      default: {
        const trySystem = async () => {
          const sys = process.env.VK_DRIVER_FILES ? undefined : await tryVulkan('vulkan (system driver)');
          if (sys) say(`WebGPU on ${sys.label}: ${tried[tried.length - 1].outcome}`);
          return sys;
        };
        // The system's default adapter first where a GPU may be: with its driver installed this is
        // the GPU. Without a GPU device, lavapipe first, then whatever CPU driver the system has.
        const gpu = mayHaveGpu();
        if (gpu) {
          const sys = await trySystem();
          if (sys) return sys;
        }
        const why = gpu ? tried.map((t) => `${t.label}: ${t.outcome}`).join('; ') || 'VK_DRIVER_FILES is set' : 'no GPU device: /dev/dri/renderD*, /dev/nvidia* and /dev/dxg are absent';
        const lvp = await tryLavapipe();
        if (lvp) {
          say(`WebGPU on ${lvp.label}, on the CPU (${why})`);
          return lvp;
        }
        if (badIcd) return undefined;
        if (!gpu) {
          const sys = await trySystem();
          if (sys) return sys;
        }
        const gl = await tryOpenGL();
        if (gl) {
          const lavapipeWhy = tried.find((t) => t.label.startsWith('vulkan (lavapipe'))?.outcome ?? '';
          say(`WebGPU on OpenGL compatibility mode (llvmpipe: slower, smaller limits) because ${lavapipeWhy}. For Vulkan lavapipe: \`npm run setup\` in a Transfuse checkout, or TRANSFUSE_LAVAPIPE_ICD=path/to/lvp_icd.json`);
        }
        return gl;
      }
    }
  };
  const found = await find();
  return found && { ...found, collectGarbage: gcFunction() };
}

