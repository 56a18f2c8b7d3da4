/**
 * Training never loses work: a small `flow train` run with a checkpoint after every step is
 * SIGKILLed 20 times (half at random moments, half the instant a save starts writing), resumed
 * each time, and must end bit-identical (weights and Adam moments) to an uninterrupted run (and a
 * killed diffusion run, EMA included); after
 * every kill each checkpoint folder present must load. SIGINT saves, exits 0, and --resume finishes.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadSafetensors, MODEL_FILE, readCheckpointExtra, STATE_FILE } from '@transfuse/core/node';
import { buildCli, runCli, startCli } from './cli-helpers.js';

const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'transfuse-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => buildCli());

const STEPS = 40;
const train = (out: string, extra: string[] = []) => ['flow', 'train', '--data', DATA, '--dataset', 'usps', '--n', '64', '--batch', '8', '--eval-n', '20', '--steps', String(STEPS), '--seed', '5', '--out', out, ...extra];

/** Every tensor of a checkpoint folder's two files, by file and name (metadata ids differ between runs). */
function tensors(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const file of [MODEL_FILE, STATE_FILE]) {
    for (const [name, t] of loadSafetensors(join(dir, file)).tensors) out.set(`${file}:${name}`, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return out;
}

function expectBitIdentical(a: string, b: string): void {
  const ta = tensors(a);
  const tb = tensors(b);
  expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
  expect([...ta.keys()].some((k) => k.includes('exp_avg_sq'))).toBe(true); // the Adam moments are compared too
  for (const [k, v] of ta) expect(Buffer.compare(Buffer.from(v), Buffer.from(tb.get(k)!)), k).toBe(0);
  const meta = (dir: string) => JSON.parse(loadSafetensors(join(dir, STATE_FILE)).metadata['transfuse.optimizer']) as unknown;
  expect(meta(b)).toEqual(meta(a)); // per-parameter Adam step counts and options
}

/** Loads every numbered checkpoint in the run's checkpoints folder (CPU only); returns their steps. */
function checkAllLoadable(out: string): number[] {
  const dir = join(out, 'checkpoints');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.startsWith('step-'))
    .map((name) => {
      const { step } = readCheckpointExtra(join(dir, name)); // throws if the two files come from different saves
      tensors(join(dir, name)); // parses every tensor
      return step;
    });
}

describe('checkpoints survive kills', () => {
  test('SIGKILL at 20 moments (during steps and saves), resumed each time: bit-identical to an uninterrupted run', async () => {
    const reference = join(root, 'reference');
    const r = await runCli(train(reference, ['--checkpoint-every', '10']));
    expect(r.code, r.stderr).toBe(0);

    const out = join(root, 'killed');
    let rng = 12345;
    const random = () => ((rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let newest = 0;
    let killsDuringSave = 0;
    for (let kill = 0; kill < 20; kill++) {
      const run = startCli(train(out, ['--checkpoint-every', '1', '--keep', '2', ...(kill > 0 ? ['--resume'] : [])]));
      const started = new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (run.stderr().includes('training flow')) {
            clearInterval(poll);
            resolve();
          }
        }, 5);
        void run.done.then(() => clearInterval(poll));
      });
      await Promise.race([started, run.done]);
      if (kill % 2 === 0) {
        // A random moment of the training loop.
        await new Promise((resolve) => setTimeout(resolve, random() * 1500));
      } else {
        // The instant a save creates its .tmp-* folder (waiting at most 3 s).
        const dir = join(out, 'checkpoints');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(finish, 3000);
          const watcher = existsSync(dir) ? watch(dir, (_, name) => name?.startsWith('.tmp-') && finish()) : null;
          function finish() {
            clearTimeout(timer);
            watcher?.close();
            resolve();
          }
        });
      }
      const hadTmp = existsSync(join(out, 'checkpoints')) && readdirSync(join(out, 'checkpoints')).some((n) => n.startsWith('.tmp-'));
      run.child.kill('SIGKILL');
      const result = await run.done;
      if (result.signal === 'SIGKILL' && hadTmp) killsDuringSave++;
      const steps = checkAllLoadable(out);
      if (process.env.DEBUG_KILLS) console.log(kill, performance.now().toFixed(0), result.signal, hadTmp, steps);
      // Saves never go backwards and a complete checkpoint, once written, is never lost.
      const latest = Math.max(0, ...steps);
      expect(latest).toBeGreaterThanOrEqual(newest);
      newest = latest;
    }
    expect(killsDuringSave, 'kills that landed while a save was being written').toBeGreaterThan(0);
    const finish = await runCli(train(out, ['--checkpoint-every', '1', '--keep', '2', '--resume']));
    expect(finish.code, finish.stderr).toBe(0);
    expectBitIdentical(join(reference, 'checkpoints', 'step-000000040'), join(out, 'checkpoints', 'step-000000040'));
    const finalWeights = (dir: string) => loadSafetensors(join(dir, MODEL_FILE)).tensors;
    for (const [name, t] of finalWeights(reference)) expect(Buffer.from(finalWeights(out).get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);
    // Leftovers of killed saves are gone after the next save.
    expect(readdirSync(join(out, 'checkpoints')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  }, 400_000);

  test('SIGINT saves a checkpoint and exits 0; --resume finishes the run', async () => {
    const out = join(root, 'interrupted');
    const run = startCli(train(out, ['--checkpoint-every', '1000']));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (/flow train [1-9]\d*\//.test(run.stderr())) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/SIGINT: saving a checkpoint after this step/);
    const stopped = /stopped at step (\d+) of 40/.exec(r.stderr);
    expect(stopped, r.stderr).not.toBeNull();
    expect(checkAllLoadable(out)).toEqual([Number(stopped![1])]);
    expect(existsSync(join(out, MODEL_FILE))).toBe(false); // not finished: sample refuses and says how to finish
    const sample = await runCli(['flow', 'sample', '--checkpoint', out]);
    expect(sample.code).toBe(2);
    expect(sample.stderr).toMatch(/holds no finished model: training stopped at .*step-0+\d+; finish it with `transfuse flow train --out .* --resume`/);
    const resumed = await runCli(['flow', 'train', '--out', out, '--data', DATA, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(existsSync(join(out, MODEL_FILE))).toBe(true);
    expect(checkAllLoadable(out)).toContain(STEPS);
  });

  test('diffusion train: killed after its first checkpoint and resumed, it ends bit-identical (weights, Adam moments, EMA)', async () => {
    const args = (out: string) => ['diffusion', 'train', '--data', DATA, '--dataset', 'usps', '--n', '64', '--batch', '8', '--steps', '6', '--ema', '0.9', '--checkpoint-every', '2', '--seed', '3', '--out', out];
    const reference = join(root, 'diffusion-reference');
    const r = await runCli(args(reference));
    expect(r.code, r.stderr).toBe(0);
    const out = join(root, 'diffusion-killed');
    const run = startCli(args(out));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (existsSync(join(out, 'checkpoints', 'step-000000002'))) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    run.child.kill('SIGKILL');
    await run.done;
    const resumed = await runCli(['diffusion', 'train', '--data', DATA, '--out', out, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const last = join('checkpoints', 'step-000000006');
    expectBitIdentical(join(reference, last), join(out, last));
    expect([...tensors(join(out, last)).keys()].some((k) => k.startsWith(`${STATE_FILE}:ema.`))).toBe(true);
  });
});
