/**
 * A grid's cells on a BullMQ queue. A cell is added as a job once every cell it reads is on disk
 * (the source model for a transfer cell, the transfer cell for its compute-matched baseline):
 * the worker that finishes a cell adds the cells it unblocks. The cells' dependencies form a
 * graph, not a tree (one source model feeds the transfer cells of every n_t), which BullMQ's
 * parent-child flows cannot express; and since releases read the folder, the queue can always
 * be rebuilt from it. Job ids are per cell, so a cell is never queued twice.
 */
import { Queue, type JobState } from 'bullmq';
import type { TransferExperiment } from '../experiments/transfer-experiment.js';
import { jobId, QUEUE_NAME, type CellJob, type GridSettings } from './cell-job.js';
import type { RedisConnection } from './redis-url.js';

/** Retries of a cell whose worker hit a transient error (a lost GPU, a file system hiccup); deterministic failures are never retried. */
const ATTEMPTS = 3;

export const openQueue = (connection: RedisConnection): Queue<CellJob> => new Queue<CellJob>(QUEUE_NAME, { connection });

/** Adds every unfinished cell whose inputs are on disk (those queued already are left as they are); returns how many it added. */
export async function releaseReady(queue: Queue<CellJob>, grid: GridSettings, e: TransferExperiment): Promise<number> {
  const ready = e.pending().filter((c) => c.needs.every((id) => e.isDone(id)));
  let added = 0;
  for (const c of ready) {
    const id = jobId(grid.folder, c.id);
    if ((await queue.getJobState(id)) !== 'unknown') continue;
    // Kept when done or failed: the record of a finished cell keeps its id from being queued again.
    await queue.add(c.id, { ...grid, cell: c.id }, { jobId: id, attempts: ATTEMPTS, backoff: { type: 'fixed', delay: 5000 }, removeOnComplete: false, removeOnFail: false });
    added++;
  }
  return added;
}

/**
 * Rebuilds the grid's queue from the folder: the records of unfinished cells that failed (or
 * completed while their result file went missing) are dropped, and the ready cells are added.
 */
export async function requeueGrid(queue: Queue<CellJob>, grid: GridSettings, e: TransferExperiment): Promise<{ dropped: number; added: number }> {
  let dropped = 0;
  for (const c of e.pending()) {
    const job = await queue.getJob(jobId(grid.folder, c.id));
    if (!job) continue;
    const state = await job.getState();
    if (state === 'failed' || state === 'completed') {
      await job.remove();
      dropped++;
    }
  }
  return { dropped, added: await releaseReady(queue, grid, e) };
}

export interface GridStatus {
  total: number;
  done: number;
  running: string[];
  /** Queued, waiting for a worker. */
  waiting: number;
  /** Not queued yet: waiting for the cells they read. */
  blocked: number;
  /** Ready but on no queue (Redis lost its data): --requeue adds them. */
  unqueued: number;
  failed: { cell: string; reason: string }[];
}

const WAITING: (JobState | 'unknown')[] = ['waiting', 'delayed', 'prioritized', 'waiting-children'];

export async function gridStatus(queue: Queue<CellJob>, grid: GridSettings, e: TransferExperiment): Promise<GridStatus> {
  const s: GridStatus = { total: e.plan.cells.length, done: 0, running: [], waiting: 0, blocked: 0, unqueued: 0, failed: [] };
  for (const c of e.plan.cells) {
    if (e.isDone(c.id)) {
      s.done++;
      continue;
    }
    const job = await queue.getJob(jobId(grid.folder, c.id));
    const state = job ? await job.getState() : 'unknown';
    if (state === 'active') s.running.push(c.id);
    else if (WAITING.includes(state)) s.waiting++;
    else if (state === 'failed') s.failed.push({ cell: c.id, reason: job!.failedReason });
    else if (c.needs.every((id) => e.isDone(id))) s.unqueued++;
    else s.blocked++;
  }
  return s;
}

export function formatStatus(s: GridStatus, width = 30): string {
  const filled = Math.round((width * s.done) / s.total);
  const lines = [
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${s.done}/${s.total} cells done | ${s.running.length} running | ${s.waiting + s.blocked} waiting (${s.blocked} for the cells they read) | ${s.failed.length} failed`,
  ];
  for (const id of s.running) lines.push(`  running: ${id}`);
  for (const f of s.failed) lines.push(`  failed: ${f.cell}: ${f.reason}`);
  if (s.unqueued) lines.push(`  ${s.unqueued} ready cell(s) are on no queue (was Redis restarted?): --requeue adds them`);
  if (s.failed.length) lines.push('  fix the cause, then --requeue runs the failed cells again');
  return lines.join('\n');
}
