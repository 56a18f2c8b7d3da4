/**
 * The adapter choice tells the truth (each case in a fresh Node process, so Dawn and the Vulkan
 * loader see only its environment): auto mode says in one stderr line what it chose and why; a
 * forced backend never silently becomes another; a TRANSFUSE_LAVAPIPE_ICD that does not exist is
 * named in the error, in auto mode too (no quiet fall to OpenGL).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** Runs init() of the built package, as Node resolves it (its node entry), in a child process. */
function initIn(env: Record<string, string | undefined>): { code: number | null; stdout: string; stderr: string } {
  const dist = fileURLToPath(new URL('../dist/node_main.js', import.meta.url));
  const script = `import(${JSON.stringify(dist)}).then(async (c) => { await c.init(); console.log(c.runtime().acquired.backend + ' | ' + c.runtime().acquired.adapter.info.description); c.shutdown(); process.exit(0); }).catch((e) => { console.log('ERROR ' + e.message); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, TRANSFUSE_BACKEND: undefined, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// The child imports the built package: build it (a no-op when current).
beforeAll(() => {
  const r = spawnSync('npx', ['tsc', '-b', 'packages/core'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsc -b failed:\n${r.stdout}${r.stderr}`);
});

describe('adapter choice', () => {
  test('auto: exactly one stderr line of ours names the adapter chosen and why', () => {
    const r = initIn({});
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const ours = r.stderr.split('\n').filter((l) => l.startsWith('transfuse:'));
    expect(ours).toHaveLength(1);
    const chosen = r.stdout.split(' | ')[0];
    expect(ours[0]).toContain(`WebGPU on ${chosen}`);
    if (chosen.startsWith('vulkan (lavapipe')) expect(ours[0]).toMatch(/on the CPU \((vulkan \(system driver\): no adapter|VK_DRIVER_FILES|no GPU device: \/dev\/dri\/renderD\*, \/dev\/nvidia\* and \/dev\/dxg are absent)/);
    if (chosen.startsWith('opengl')) expect(ours[0]).toMatch(/npm run setup.*TRANSFUSE_LAVAPIPE_ICD/);
  });

  test('without a GPU device node, auto mode does not probe the system drivers first (Dawn would warn about each CPU driver it rejects)', () => {
    const gpuNode = existsSync('/dev/dxg') || (existsSync('/dev/dri') && readdirSync('/dev/dri').some((n) => n.startsWith('renderD'))) || readdirSync('/dev').some((n) => n.startsWith('nvidia'));
    const r = initIn({});
    expect(r.code, r.stdout + r.stderr).toBe(0);
    if (gpuNode) {
      expect(r.stderr).toMatch(/transfuse: WebGPU on vulkan \(system driver\)|vulkan \(system driver\): /);
    } else {
      expect(r.stdout).toMatch(/^vulkan \(lavapipe at /);
      // What Dawn still prints (from native code: not filterable in-process) is its limit clamp, nothing about rejected drivers.
      const dawn = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('transfuse:'));
      for (const line of dawn) expect(line).toMatch(/^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to 16 to fit dynamic offset allocation limit\.$/);
      expect(dawn.length).toBeLessThanOrEqual(2);
    }
  });

  test('TRANSFUSE_BACKEND=vulkan is a GPU driver or an error, never lavapipe in disguise', () => {
    const r = initIn({ TRANSFUSE_BACKEND: 'vulkan' });
    if (r.code === 0) {
      expect(r.stdout).toMatch(/^vulkan \(system driver\) \| /);
      expect(r.stdout).not.toMatch(/llvmpipe|lavapipe|swiftshader/i);
    } else {
      expect(r.stdout).toMatch(/ERROR No WebGPU adapter found \(backend 'vulkan'\)\. Tried:\n {2}- vulkan \(system driver\): (no adapter|found .*a CPU implementation, not a GPU driver \(TRANSFUSE_BACKEND=lavapipe runs on it\))/);
    }
  });

  test('a TRANSFUSE_LAVAPIPE_ICD that does not exist is named, in auto mode as when forced', () => {
    for (const backend of [undefined, 'lavapipe']) {
      const r = initIn({ TRANSFUSE_BACKEND: backend, TRANSFUSE_LAVAPIPE_ICD: '/nonexistent/lvp_icd.json', VK_DRIVER_FILES: '/nonexistent/lvp_icd.json' });
      expect(r.code, `${backend}: ${r.stdout}`).toBe(1);
      expect(r.stdout).toContain(`No WebGPU adapter found (backend '${backend ?? 'auto'}')`);
      expect(r.stdout).toContain('TRANSFUSE_LAVAPIPE_ICD=/nonexistent/lvp_icd.json does not exist');
      expect(r.stdout).not.toContain('opengl (compatibility mode)');
    }
  });
});
