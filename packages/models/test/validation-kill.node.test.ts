/**
 * Early stopping survives SIGKILL: a child process training a flow with validation and a
 * checkpoint after every step is killed at 8 random moments (during steps, checks and saves) and
 * resumed each time; it ends with the weights, kept step, validation curve and losses of an
 * uninterrupted run, and every checkpoint folder left after a kill loads.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadSafetensors, readCheckpointExtra, STATE_FILE } from '@transfuse/core/node';
import { buildCli, ROOT } from './cli-helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/validation-run.mjs', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'transfuse-validation-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => buildCli());

interface Outcome {
  steps: number;
  interrupted: boolean;
  validation: { history: [number, number][]; bestStep: number; best: number };
  losses: [number, number][];
  weights: Record<string, string>;
}

/** Runs the child; with `killAfterMs`, SIGKILLs it that long after training started. `ms`: training time until it ended. */
function run(dir: string, mode: 'fresh' | 'resume', out: string, killAfterMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; ms: number }> {
  const child = spawn(process.execPath, [CHILD, dir, mode, out], { cwd: ROOT });
  let stderr = '';
  let timer: NodeJS.Timeout | undefined;
  let started = 0;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!started && stderr.includes('training\n')) {
      started = performance.now();
      if (killAfterMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    }
  });
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ms: performance.now() - started });
    }),
  );
}

describe('early stopping with checkpoints under SIGKILL', () => {
  test('killed at 8 random moments and resumed each time: the uninterrupted weights, kept step and curve', async () => {
    const refOut = join(root, 'reference.json');
    const r = await run(join(root, 'reference'), 'fresh', refOut);
    expect(r.code, r.stderr).toBe(0);
    const reference = JSON.parse(readFileSync(refOut, 'utf8')) as Outcome;
    expect(reference.steps).toBe(reference.validation.bestStep + 80); // early stopping ended it

    const dir = join(root, 'killed');
    const out = join(root, 'killed.json');
    let seed = 777;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let killed = 0;
    let newest = 0;
    for (let k = 0; k < 8; k++) {
      // A random moment of what is left of the run (scaled by the reference run's time, so that a fast machine kills too).
      const left = r.ms * (1 - newest / reference.steps);
      const result = await run(dir, k === 0 ? 'fresh' : 'resume', out, random() * 0.8 * left);
      if (result.signal === 'SIGKILL') killed++;
      else expect(result.code, result.stderr).toBe(0);
      // Every checkpoint left behind loads, holds the early-stopping section, and saves never go backwards.
      const steps = existsSync(dir)
        ? readdirSync(dir)
            .filter((n) => n.startsWith('step-'))
            .map((n) => {
              const { step, extra } = readCheckpointExtra(join(dir, n));
              expect((extra as { loop: { history: unknown[] } }).loop.history).toBeInstanceOf(Array);
              expect(loadSafetensors(join(dir, n, STATE_FILE)).metadata['transfuse.best']).toBeDefined();
              return step;
            })
        : [];
      const latest = Math.max(0, ...steps);
      expect(latest).toBeGreaterThanOrEqual(newest);
      newest = latest;
      if (result.code === 0) break; // it finished before the kill
    }
    expect(killed, 'runs that were killed').toBeGreaterThanOrEqual(3);
    const finish = await run(dir, 'resume', out);
    expect(finish.code, finish.stderr).toBe(0);
    const resumed = JSON.parse(readFileSync(out, 'utf8')) as Outcome;
    expect(resumed.validation).toEqual(reference.validation);
    expect(resumed.steps).toBe(reference.steps);
    expect(resumed.losses).toEqual(reference.losses);
    expect(resumed.weights).toEqual(reference.weights);
  }, 400_000);
});
