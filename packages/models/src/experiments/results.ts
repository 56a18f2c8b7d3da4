/** Results folders: atomic JSON writes and resumable cells (a finished cell is never recomputed). */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function writeFileAtomic(path: string, content: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${path}: not a readable JSON file: ${(e as Error).message}`);
  }
}

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
