/**
 * Finding a WebGPU device on any machine, or failing with an error that says what was tried.
 *
 * Order, unless `backend` (or TRANSFUSE_BACKEND) names one: the system's Vulkan drivers (a real
 * GPU), Transfuse's Vulkan lavapipe, then Dawn's OpenGL backend in WebGPU compatibility mode (Mesa
 * llvmpipe, present on most Linux machines); on Linux without a GPU device node, lavapipe before the
 * system's drivers (node_adapter.ts). In a browser, `navigator.gpu` is used.
 */

export type BackendName = 'auto' | 'vulkan' | 'lavapipe' | 'opengl' | 'browser';

export interface DeviceOptions {
  /** Which adapter to use; default `process.env.TRANSFUSE_BACKEND` or 'auto'. */
  backend?: BackendName;
  powerPreference?: GPUPowerPreference;
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Which path found the adapter, e.g. 'vulkan (system driver)', 'vulkan (lavapipe)', 'opengl (compatibility)'. */
  backend: string;
  /** True in WebGPU compatibility mode (smaller limits). */
  compatibility: boolean;
  /** The object returned by `webgpu.create()`: Dawn aborts if it is garbage-collected while the device lives. */
  gpu: GPU;
  /**
   * Runs a full garbage collection, where the platform allows it (Node). Dawn's Node binding frees
   * a bind group only when its JS object is collected, and V8 does not see the native memory
   * behind it; the runtime calls this after creating many (see Runtime).
   */
  collectGarbage?: () => void;
}

export const NO_ADAPTER_HELP = `How to get a WebGPU adapter:
  - Linux (Debian/Ubuntu): run \`npm run setup\` in the Transfuse checkout; it installs libvulkan1 and
    Mesa's lavapipe into .transfuse/lavapipe. Or install Mesa (llvmpipe) so that OpenGL works
    (apt-get install libegl1 libgl1-mesa-dri) and set TRANSFUSE_BACKEND=opengl.
    With a GPU: install its Vulkan driver and the Vulkan loader (libvulkan1).
  - macOS: Metal is used by default; update macOS if no adapter is found.
  - Windows: update the GPU driver (D3D12 is used by default).
  - Any machine: set TRANSFUSE_LAVAPIPE_ICD to an lvp_icd.json, or TRANSFUSE_BACKEND to
    vulkan|lavapipe|opengl to force one path.`;

export const BROWSER_ADAPTER_HELP = `In a browser: Chrome, Edge and Chromium 113+ have WebGPU; on Linux, and
    headless, start Chromium with --enable-unsafe-webgpu (with no GPU it then runs on SwiftShader,
    e.g. chromium --headless=new --no-sandbox --enable-unsafe-webgpu), and serve the page over
    http://localhost or https (navigator.gpu exists only in secure contexts).`;

export interface Attempt {
  label: string;
  outcome: string;
}

export interface FoundAdapter {
  gpu: GPU;
  adapter: GPUAdapter;
  label: string;
  compatibility: boolean;
  collectGarbage?: () => void;
}

export type NodeAdapterFinder = (backend: BackendName, options: DeviceOptions, tried: Attempt[]) => Promise<FoundAdapter | undefined>;

// Set by the Node entries (node_main.ts), so that the browser entry never reaches Dawn or node: modules.
let nodeAdapterFinder: NodeAdapterFinder | undefined;
export function setNodeAdapterFinder(finder: NodeAdapterFinder): void {
  nodeAdapterFinder = finder;
}

/** True for CPU implementations of WebGPU (llvmpipe/lavapipe, SwiftShader, Dawn's fallback). */
export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  const text = `${info.architecture} ${info.device} ${info.description}`;
  return Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) || /llvmpipe|lavapipe|swiftshader|software/i.test(text);
}

/** Features the kernels can use when the adapter has them. */
const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

/** Acquires an adapter and a device with the adapter's full limits and the optional features present. */
export async function acquireDevice(options: DeviceOptions = {}): Promise<AcquiredDevice> {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  const requested = (options.backend ?? (isNode ? (process.env.TRANSFUSE_BACKEND as BackendName) || undefined : undefined) ?? 'auto') as BackendName;
  const known: BackendName[] = ['auto', 'vulkan', 'lavapipe', 'opengl', 'browser'];
  if (!known.includes(requested)) {
    throw new Error(`Unknown backend '${requested}' (TRANSFUSE_BACKEND or options.backend): use one of ${known.join(', ')}`);
  }
  const tried: Attempt[] = [];
  let found: FoundAdapter | undefined;
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (!isNode || requested === 'browser') {
    if (nav?.gpu) {
      const adapter = await nav.gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
      tried.push({ label: 'navigator.gpu', outcome: adapter ? 'found' : `no adapter. ${BROWSER_ADAPTER_HELP}` });
      if (adapter) found = { gpu: nav.gpu, adapter, label: 'navigator.gpu', compatibility: false };
    } else {
      tried.push({ label: 'navigator.gpu', outcome: `absent (WebGPU is not enabled in this browser). ${BROWSER_ADAPTER_HELP}` });
    }
  } else {
    if (!nodeAdapterFinder) {
      throw new Error(
        "Transfuse runs in Node here but its Node adapter finder (Dawn) is not loaded: import '@transfuse/core' through Node's resolution (the package's 'node' export condition) or import '@transfuse/core/node' first",
      );
    }
    found = await nodeAdapterFinder(requested, options, tried);
  }
  if (!found) {
    const lines = tried.map((t) => `  - ${t.label}: ${t.outcome}`).join('\n');
    throw new Error(`No WebGPU adapter found (backend '${requested}'). Tried:\n${lines}\n${NO_ADAPTER_HELP}`);
  }
  const { adapter } = found;
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  // Ask for everything the adapter offers: compatibility mode's defaults (128 invocations,
  // 16 KiB workgroup memory) are lower than what llvmpipe can do.
  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, number>;
  for (const key of [
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupSizeZ',
    'maxComputeWorkgroupStorageSize',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxStorageBuffersPerShaderStage',
    'maxUniformBufferBindingSize',
  ]) {
    if (typeof limits[key] === 'number') requiredLimits[key] = limits[key];
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  return { device, adapter, backend: found.label, compatibility: found.compatibility, gpu: found.gpu, collectGarbage: found.collectGarbage };
}
