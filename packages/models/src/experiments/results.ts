/** Results folders tied to one configuration, resumable cells (a finished cell is never recomputed), and summary statistics. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, writeJson } from '../io/files.js';

/**
 * Ties a results folder to one experiment and configuration, so resumed cells never mix with cells
 * of other settings: the first run writes `dir/config.json`, later runs must match it.
 */
export function claimResultsFolder(dir: string, experiment: string, config: unknown): void {
  const path = join(dir, 'config.json');
  const want = { experiment, config };
  if (!existsSync(path)) return writeJson(path, want);
  const have = readJson<unknown>(path);
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    throw new Error(
      `${dir} holds results of a different run (${path}); its finished cells would be mixed with this one's. ` +
        `Pass another --out, or delete the folder to start over.\n  there: ${JSON.stringify(have)}\n  now:   ${JSON.stringify(want)}`,
    );
  }
}

/** Runs `compute` unless `dir/cells/id.json` exists; stores its result there. */
export async function cell<T>(dir: string, id: string, compute: () => Promise<T>, log: (msg: string) => void = () => {}): Promise<T> {
  const path = join(dir, 'cells', `${id}.json`);
  if (existsSync(path)) {
    log(`[${id}] done earlier: ${path}`);
    return readJson<T>(path);
  }
  const started = performance.now();
  const value = await compute();
  writeJson(path, value);
  log(`[${id}] finished in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return value;
}

export { fmtStat, stat, type Stat } from '../metrics/statistics.js';
