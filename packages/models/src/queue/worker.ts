/**
 * `transfuse worker`: takes cells off the queue, one at a time, and runs them with the
 * experiment runner's own cell function on the shared results folder. A job is checked field by
 * field before any work; a cell that fails is marked failed with its error and not retried (the
 * same inputs fail the same way); a worker killed in the middle of a cell stops renewing its lock,
 * and another worker takes the cell again (up to MAX_STALLS times) and resumes its training from
 * the newest checkpoint; a worker stopped by SIGINT/SIGTERM saves that checkpoint and puts the
 * cell back on the queue. The worker that finishes the last cell writes the report.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { TrainingInterrupted } from '../experiments/families.js';
import { mnistUspsExperiment } from '../experiments/mnist-usps.js';
import type { TransferExperiment } from '../experiments/transfer-experiment.js';
import { checkCellJob, gridKey, gridOf, gridOptions, QUEUE_NAME, type CellJob, type GridSettings } from './cell-job.js';
import { openQueue, releaseReady } from './grid-queue.js';
import type { RedisConnection } from './redis-url.js';

/** A cell whose worker died this many times fails (something about it kills workers). */
const MAX_STALLS = 2;

export interface WorkerOptions {
  connection: RedisConnection;
  dataDir: string;
  /** The folder that holds the grids' results folders (the shared mount). */
  results: string;
  /** How long a worker's claim on a cell lasts without renewal: a killed worker's cell is taken again after it. */
  lockSeconds: number;
  /** Exit once no cell is waiting or running anywhere on the queue. */
  untilEmpty: boolean;
  log: (msg: string) => void;
  /** Starts the GPU (once; only for a job that passed its checks). */
  gpu: () => Promise<void>;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function runWorker(o: WorkerOptions): Promise<void> {
  const queue = openQueue(o.connection);
  let open: { key: string; grid: GridSettings; experiment: TransferExperiment } | null = null;
  let gpuReady: Promise<void> | null = null;
  let noGpu: Error | null = null;
  let stop: ((why: string) => Promise<void>) | null = null;

  const experimentOf = async (job: CellJob): Promise<TransferExperiment> => {
    const grid = gridOf(job);
    if (open?.key === gridKey(grid)) return open.experiment;
    await open?.experiment.dispose();
    open = null;
    const out = join(o.results, job.folder);
    // Not an error of the cell: this machine lacks the shared folder. Another worker may have it.
    if (!existsSync(join(out, 'config.json'))) throw new Error(`${out} has no config.json: is the shared results folder mounted at --results ${o.results} on this machine? (enqueueing creates it)`);
    let experiment: TransferExperiment;
    try {
      experiment = mnistUspsExperiment(gridOptions(grid, o.dataDir, o.results, o.log));
    } catch (e) {
      throw new UnrecoverableError(message(e));
    }
    open = { key: gridKey(grid), grid, experiment };
    return experiment;
  };

  const processCell = async (job: Job<CellJob>, token?: string) => {
    let data: CellJob;
    try {
      data = checkCellJob(job.data);
    } catch (e) {
      o.log(`[job ${job.id}] rejected: ${message(e)}`);
      throw new UnrecoverableError(`rejected: ${message(e)}`);
    }
    const experiment = await experimentOf(data);
    if (!experiment.plan.cells.some((c) => c.id === data.cell)) throw new UnrecoverableError(`rejected: '${data.cell}' is not a cell of this grid (its n_s uses the same source images as another)`);
    gpuReady ??= o.gpu().catch((e) => {
      // This machine cannot run cells: the job goes back to the queue for another worker, and this one stops.
      noGpu = e instanceof Error ? e : new Error(String(e));
      void stop?.(`transfuse worker: no usable GPU adapter (${message(e)}); exiting`);
      throw noGpu;
    });
    await gpuReady;
    const started = performance.now();
    try {
      await experiment.runCell(data.cell);
    } catch (e) {
      if (e instanceof TrainingInterrupted) {
        // Stopped by a signal after saving its checkpoint: back to the queue (no attempt used); any worker resumes it.
        o.log(`[${data.cell}] ${e.message}; back on the queue`);
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      o.log(`[${data.cell}] failed: ${message(e)}`);
      throw new UnrecoverableError(message(e));
    }
    const released = await releaseReady(queue, open!.grid, experiment);
    if (released) o.log(`[${data.cell}] released ${released} cell(s) that read it`);
    if (!experiment.pending().length) {
      experiment.report();
      o.log(`${data.folder}: every cell is done; report written to ${experiment.out}/results.md`);
    }
    return { cell: data.cell, seconds: Math.round((performance.now() - started) / 100) / 10 };
  };

  const worker = new Worker<CellJob>(QUEUE_NAME, processCell, {
    connection: o.connection,
    concurrency: 1,
    lockDuration: o.lockSeconds * 1000,
    stalledInterval: (o.lockSeconds * 1000) / 2,
    maxStalledCount: MAX_STALLS,
  });
  worker.on('failed', (job, e) => job && o.log(`[job ${job.id}] failed (attempt ${job.attemptsMade}): ${e.message}`));
  worker.on('error', (e) => o.log(`worker: ${e.message}`));
  o.log(`transfuse worker: queue ${QUEUE_NAME} on ${o.connection.host}:${o.connection.port}/${o.connection.db}, results under ${o.results}`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    stop = async (why: string) => {
      if (stopping) return;
      stopping = true;
      clearInterval(timer);
      o.log(why);
      // Waits for the cell in progress: a training run saves its checkpoint on the signal and stops, anything else finishes.
      await worker.close();
      await open?.experiment.dispose();
      await queue.close();
      resolve();
    };
    const onSignal = (sig: NodeJS.Signals) => {
      if (!stopping) return void stop!(`transfuse worker: ${sig}; the cell in progress saves its checkpoint (or finishes), then the worker exits; a second ${sig} exits at once`);
      // Its lock runs out and another worker takes the cell again from its newest checkpoint.
      o.log(`transfuse worker: second ${sig}; exiting now`);
      process.exit(130);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const timer = setInterval(async () => {
      if (!o.untilEmpty || stopping) return;
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      if (Object.values(c).every((n) => n === 0)) void stop!('transfuse worker: the queue is empty; exiting');
    }, 2000);
  });
  if (noGpu) throw noGpu;
}
