/** Running the built `transfuse` CLI in a child process (tests of exit codes, signals and resume). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const CLI = join(ROOT, 'packages/models/dist/cli.js');
const MARKER_HOOK = fileURLToPath(new URL('./fixtures/gpu-marker.mjs', import.meta.url));

/** Builds the packages (a no-op when dist is current), so the CLI under test is the source's. */
export function buildCli(): void {
  const r = spawnSync('npx', ['tsc', '-b'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsc -b failed:\n${r.stdout}${r.stderr}`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Whether the process imported the 'webgpu' package (asked for a GPU adapter). */
  gpu: boolean;
}

/** Starts the CLI with the GPU-marker hook; `done` resolves when it exits. */
export function startCli(args: string[]): { child: ChildProcess; done: Promise<CliResult>; stderr: () => string } {
  const dir = mkdtempSync(join(tmpdir(), 'cli-marker-'));
  const marker = join(dir, 'gpu');
  const child = spawn(process.execPath, ['--import', MARKER_HOOK, CLI, ...args], { cwd: ROOT, env: { ...process.env, TRANSFUSE_TEST_GPU_MARKER: marker } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => {
      const gpu = existsSync(marker);
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr, gpu });
    }),
  );
  return { child, done, stderr: () => stderr };
}

export const runCli = (args: string[]): Promise<CliResult> => startCli(args).done;
