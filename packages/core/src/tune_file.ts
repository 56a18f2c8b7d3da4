/**
 * Node only (`@transfuse/core/tune-file`, never imported by the main entry): a TuneStore kept in
 * a JSON file, so that measured kernel choices survive the process. Each set rewrites the file
 * atomically (a temporary file renamed over it); a corrupt file is an error that names it.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TuneStore } from './tune.js';

const CACHE_DIR = ['.cache', 'transfuse'];

/** TRANSFUSE_TUNE_CACHE, else ~/.cache/transfuse/tune.json. */
export function defaultTuneFile(): string {
  return process.env.TRANSFUSE_TUNE_CACHE || join(homedir(), ...CACHE_DIR, 'tune.json');
}

export function fileTuneStore(path = defaultTuneFile()): TuneStore {
  let table: Record<string, string> = {};
  if (existsSync(path)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      table = parsed as Record<string, string>;
    } catch (e) {
      throw new Error(`tuning cache ${path} is unreadable (${(e as Error).message}); delete it or set TRANSFUSE_TUNE_CACHE to another file`);
    }
  }
  return {
    get: (k) => (typeof table[k] === 'string' ? table[k] : undefined),
    set: (k, v) => {
      table[k] = v;
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(table, null, 1)}\n`);
      renameSync(tmp, path);
    },
  };
}
