/**
 * Experiment grids on a real BullMQ queue (a private redis-server on 127.0.0.1, a random port, a
 * password): the smoke preset run by two worker processes, one SIGKILLed in the middle of a cell,
 * gives the single-process runner's results.json; jobs with invalid parameters are refused before
 * any work; --status and --requeue report and rebuild the queue from the results folder.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MNIST_USPS_PRESETS, planTransferCells } from '@transfuse/models/node';
import { buildCli, runCli, startCli } from './cli-helpers.js';
import { startRedis, type TestRedis } from './redis-server.js';

const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;
const QUEUE = 'transfuse-cells';
/** MNIST's training images: no smoke n_s reaches it, so every n_s is its own cell. */
const MNIST_TRAIN = 60000;

let redis: TestRedis;
beforeAll(async () => {
  buildCli();
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const connection = (db: number) => ({ host: redis.host, port: redis.port, password: redis.password, db });
const url = (db: number) => `${redis.url}/${db}`;

/** results.json without the wall-clock seconds of each training run (TrainRecord.seconds), the only field that differs between runs. */
function withoutSeconds(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(withoutSeconds);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).filter(([k]) => k !== 'seconds').map(([k, v]) => [k, withoutSeconds(v)]));
  return x;
}

describe('experiment grids on a job queue', () => {
  test('smoke preset through two workers, one SIGKILLed mid-cell: every cell finishes once, results.json equals the single-process run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'transfuse-queue-'));
    const single = join(root, 'single');
    const shared = join(root, 'shared');
    const grid = join(shared, 'smoke-grid');
    const name = 'mnist-usps-conditional';
    const plan = planTransferCells({ ...MNIST_USPS_PRESETS.smoke, conditional: true }, MNIST_TRAIN).cells;

    const enqueue = await runCli(['experiment', name, '--preset', 'smoke', '--out', grid, '--data', DATA, '--queue', url(0)]);
    expect(enqueue.code, enqueue.stderr).toBe(0);
    expect(enqueue.gpu).toBe(false);
    const ready = plan.filter((c) => c.needs.length === 0).length;
    expect(enqueue.stderr).toContain(`smoke-grid: ${ready} cell(s) queued now, ${plan.length - ready} more once the cells they read are done (0/${plan.length} done already)`);

    // The reference: the single-process runner, same preset, same seeds; it runs beside the workers.
    const reference = runCli(['experiment', name, '--preset', 'smoke', '--out', single, '--data', DATA]);
    const worker = () => startCli(['worker', '--queue', url(0), '--results', shared, '--data', DATA, '--lock-seconds', '10', '--until-empty']);
    const workers = [worker(), worker()];
    // SIGKILL the first worker seen training a source model (a cell others depend on), in the middle of it.
    const killed = await new Promise<{ index: number; cell: string }>((resolve, reject) => {
      const timer = setInterval(() => {
        for (const [index, w] of workers.entries()) {
          const m = /(diffusion|flow) source n_s=200 seed 0 [3-9]\/12 /.exec(w.stderr());
          if (m) {
            clearInterval(timer);
            w.child.kill('SIGKILL');
            resolve({ index, cell: `${m[1]}-source-ns200-seed0` });
            return;
          }
          if (w.child.exitCode !== null) {
            clearInterval(timer);
            reject(new Error(`worker ${index} exited before a source model was trained:\n${w.stderr()}`));
          }
        }
      }, 50);
    });
    const [a, b] = await Promise.all(workers.map((w) => w.done));
    const survivor = [a, b][1 - killed.index];
    expect([a, b][killed.index].signal).toBe('SIGKILL');
    expect(survivor.code, survivor.stderr.slice(-3000)).toBe(0);
    const ref = await reference;
    expect(ref.code, ref.stderr.slice(-3000)).toBe(0);

    // Every cell finished exactly once (the killed worker finished none of its last cell), and the killed one was taken again.
    const logs = `${a.stderr}\n${b.stderr}`;
    for (const c of plan) expect(logs.split('\n').filter((l) => l.startsWith(`[${c.id}] finished in`)).length, c.id).toBe(1);
    expect(survivor.stderr).toContain(`[${killed.cell}] finished in`);
    expect(readdirSync(join(grid, 'cells')).sort()).toEqual(plan.map((c) => `${c.id}.json`).sort());
    expect(existsSync(join(grid, 'checkpoints')) ? readdirSync(join(grid, 'checkpoints')) : []).toEqual([]);
    const queue = new Queue(QUEUE, { connection: connection(0) });
    try {
      const job = (await queue.getJob(`smoke-grid+${killed.cell}`))!;
      expect(await job.getState()).toBe('completed');
      expect(job.stalledCounter).toBe(1);
      expect(await queue.getJobCounts('completed', 'failed')).toEqual({ completed: plan.length, failed: 0 });
    } finally {
      await queue.close();
    }

    // The report, written by the worker that finished the last cell, is the single-process runner's.
    const results = (dir: string) => JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(withoutSeconds(results(grid))).toEqual(withoutSeconds(results(single)));
    expect(readFileSync(join(grid, 'results.md'), 'utf8')).toBe(readFileSync(join(single, 'results.md'), 'utf8'));

    const status = await runCli(['experiment', name, '--preset', 'smoke', '--out', grid, '--data', DATA, '--queue', url(0), '--status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`[${'#'.repeat(30)}] ${plan.length}/${plan.length} cells done | 0 running | 0 waiting (0 for the cells they read) | 0 failed`);
  }, 900_000);

  test('invalid jobs are refused before any work; the folder config guard holds; --status and --requeue', async () => {
    const shared = mkdtempSync(join(tmpdir(), 'transfuse-queue-bad-'));
    const grid = ['mnist-usps-conditional', '--preset', 'smoke', '--families', 'flow', '--nt', '60', '--out', join(shared, 'guard'), '--data', DATA];
    const plan = planTransferCells({ ...MNIST_USPS_PRESETS.smoke, diffusion: undefined, ntList: [60], conditional: true }, MNIST_TRAIN).cells;
    const ready = plan.filter((c) => c.needs.length === 0).length;
    // Enqueued on database 2, which no worker serves: --status counts every cell as waiting.
    expect((await runCli(['experiment', ...grid, '--queue', url(2)])).code).toBe(0);
    const waiting = await runCli(['experiment', ...grid, '--queue', url(2), '--status']);
    expect(waiting.stdout).toContain(`[${'-'.repeat(30)}] 0/${plan.length} cells done | 0 running | ${plan.length} waiting (${plan.length - ready} for the cells they read) | 0 failed`);

    const queue = new Queue(QUEUE, { connection: connection(1) });
    try {
      const ok = { experiment: 'mnist-usps-conditional', preset: 'smoke', folder: 'guard', cell: 'floor' };
      const bad: [string, Record<string, unknown>, RegExp][] = [
        ['escape', { ...ok, folder: '../escape' }, /rejected: results folder name '..\/escape' must be letters/],
        ['script', { ...ok, script: 'rm -rf /' }, /rejected: job data has unknown field\(s\) script/],
        ['cell', { ...ok, cell: 'diffusion-transfer-nt60-ns999-seed0' }, /rejected: job cell 'diffusion-transfer-nt60-ns999-seed0' is not a cell of mnist-usps-conditional preset smoke/],
        ['preset', { ...ok, preset: 'huge' }, /rejected: job preset must be one of smoke, demo, cpu, paper, got "huge"/],
        ['nt', { ...ok, nt: [1] }, /rejected: job nt must be distinct whole numbers/],
        ['cap', { ...ok, sourceCap: 0 }, /rejected: job sourceCap must be a whole number of at least 1, got 0/],
        ['checks', { ...ok, targetCheckEpochs: 1.5 }, /rejected: job targetCheckEpochs must be a whole number of at least 1, got 1.5/],
        ['arms', { ...ok, arms: ['transfer', 'gan'] }, /rejected: job arms must be distinct names of transfer, variant, baseline, matched, got \["transfer","gan"\]/],
        ['lr', { ...ok, targetLr: '1e-4' }, /rejected: job targetLr must be a learning rate above 0 and at most 1, got "1e-4"/],
        ['prior', { ...ok, targetActnormPrior: -1 }, /rejected: job targetActnormPrior must be a number of images >= 0, got -1/],
        ['ema', { ...ok, targetEma: 1 }, /rejected: job targetEma must be a decay between 0 and 1 \(exclusive\), got 1/],
        // A cap the folder was not claimed with: the config guard refuses it, as for any other setting.
        ['capguard', { ...ok, families: ['flow'], nt: [60], sourceCap: 99 }, /holds results of a different run \(.*config\.json\): the flow settings differ.*"cap":99/s],
        // Valid, but the folder holds the smoke preset's settings, not the cpu preset's: its config guard refuses it, on every worker.
        ['guard', { ...ok, preset: 'cpu', families: ['flow'], nt: [60] }, /holds results of a different run \(.*config\.json\): the settings differ/],
      ];
      for (const [id, data] of bad) await queue.add('cell', data as never, { jobId: id === 'guard' ? 'guard+floor' : `bad-${id}`, attempts: 3 });
      const w = await runCli(['worker', '--queue', url(1), '--results', shared, '--data', DATA, '--lock-seconds', '10', '--until-empty']);
      expect(w.code, w.stderr).toBe(0);
      // Nothing ran: no GPU, no files beyond what enqueueing wrote.
      expect(w.gpu).toBe(false);
      expect(readdirSync(shared)).toEqual(['guard']);
      expect(readdirSync(join(shared, 'guard')).sort()).toEqual(['config.json', 'usps-split.json']);
      for (const [id, , reason] of bad) {
        const job = (await queue.getJob(id === 'guard' ? 'guard+floor' : `bad-${id}`))!;
        expect(await job.getState(), id).toBe('failed');
        expect(job.failedReason, id).toMatch(reason);
        // Failed for good at the first attempt of 3: the same job would fail the same way.
        expect(job.attemptsMade, id).toBe(1);
      }

      // The grid's status on database 1: floor failed (with its reason), the other ready cells on no queue.
      const status = await runCli(['experiment', ...grid, '--queue', url(1), '--status']);
      expect(status.stdout).toContain(`0/${plan.length} cells done | 0 running | ${plan.length - ready} waiting (${plan.length - ready} for the cells they read) | 1 failed`);
      expect(status.stdout).toMatch(/failed: floor: .*holds results of a different run/);
      expect(status.stdout).toContain(`${ready - 1} ready cell(s) are on no queue (was Redis restarted?): --requeue adds them`);
      const requeue = await runCli(['experiment', ...grid, '--queue', url(1), '--requeue']);
      expect(requeue.stderr).toContain(`guard: rebuilt from ${join(shared, 'guard')}: 1 failed or lost record(s) dropped, ${ready} cell(s) queued`);
      expect(requeue.stdout).toContain(`0/${plan.length} cells done | 0 running | ${plan.length} waiting (${plan.length - ready} for the cells they read) | 0 failed`);
      expect((await queue.getJob('guard+floor'))!.data).toEqual({ experiment: 'mnist-usps-conditional', preset: 'smoke', families: ['flow'], nt: [60], folder: 'guard', cell: 'floor' });
      // Flags are checked before anything connects.
      const badUrl = await runCli(['worker', '--queue', 'http://127.0.0.1:1', '--results', shared]);
      expect([badUrl.code, badUrl.stderr.trim()]).toEqual([2, "transfuse worker: --queue must be redis://[:PASSWORD@]HOST:PORT[/DB]; the scheme is 'http' (got 'http://127.0.0.1:1')"]);
    } finally {
      await queue.close();
    }
  }, 300_000);
});
