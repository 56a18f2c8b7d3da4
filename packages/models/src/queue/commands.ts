/**
 * The queue's command-line actions (Node-only; the CLI loads this file only with --queue or for
 * `transfuse worker`): enqueue a grid, show its status, rebuild its queue from the folder.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { mnistUspsExperiment } from '../experiments/mnist-usps.js';
import type { Family } from '../experiments/families.js';
import type { Arm } from '../experiments/transfer-summary.js';
import { checkFolderName, gridOf, gridOptions, type QueueExperiment } from './cell-job.js';
import { formatStatus, gridStatus, openQueue, releaseReady, requeueGrid } from './grid-queue.js';
import type { RedisConnection } from './redis-url.js';

export { runWorker } from './worker.js';

export interface GridCommand {
  connection: RedisConnection;
  experiment: QueueExperiment;
  preset: string;
  ns?: number[];
  families?: Family[];
  seeds?: number[];
  nt?: (number | 'all')[];
  arms?: Arm[];
  sourceCap?: number;
  targetCap?: number;
  targetCheckEpochs?: number;
  targetEma?: number;
  targetLr?: number;
  targetActnormPrior?: number;
  /** The grid's results folder; workers find it by its name under their --results. */
  out: string;
  dataDir: string;
  action: 'enqueue' | 'status' | 'requeue';
  log: (msg: string) => void;
}

export async function gridCommand(c: GridCommand): Promise<void> {
  const grid = gridOf({ ...c, folder: checkFolderName(basename(c.out)) });
  // Enqueueing claims the folder (config.json); --status and --requeue read a folder enqueued before.
  if (c.action !== 'enqueue' && !existsSync(join(c.out, 'config.json'))) throw new Error(`${c.out} has no config.json: no grid was enqueued there (pass its --out)`);
  const experiment = mnistUspsExperiment(gridOptions(grid, c.dataDir, dirname(c.out), c.log));
  const queue = openQueue(c.connection);
  try {
    if (c.action === 'enqueue') {
      const added = await releaseReady(queue, grid, experiment);
      const s = await gridStatus(queue, grid, experiment);
      c.log(`${grid.folder}: ${added} cell(s) queued now, ${s.blocked} more once the cells they read are done (${s.done}/${s.total} done already)`);
      c.log(`run workers (any number, any machine that mounts ${dirname(c.out)}): transfuse worker --queue URL --results ${dirname(c.out)} [--data DIR]`);
    } else if (c.action === 'requeue') {
      const r = await requeueGrid(queue, grid, experiment);
      c.log(`${grid.folder}: rebuilt from ${c.out}: ${r.dropped} failed or lost record(s) dropped, ${r.added} cell(s) queued`);
    }
    const s = await gridStatus(queue, grid, experiment);
    process.stdout.write(`${formatStatus(s)}\n`);
    if (s.done === s.total) {
      experiment.report();
      c.log(`every cell is done: the report is in ${c.out}/results.md`);
    }
  } finally {
    await queue.close();
    await experiment.dispose();
  }
}
