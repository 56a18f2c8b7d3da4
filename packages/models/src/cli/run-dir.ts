/**
 * A training command's run folder: `run.json` records the flags a run was started with, so that
 * `--resume` continues it with the same settings; checkpoints go to `checkpoints/`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findLatestCheckpoint, MODEL_FILE } from '@transfuse/core/node';
import { readJson, writeJson } from '../io/files.js';
import { UsageError } from './flags.js';

export const RUN_FILE = 'run.json';
export const checkpointsDir = (out: string) => join(out, 'checkpoints');

/**
 * The settings of the run in `out`: with `resume`, the saved ones (a flag given now that differs
 * from them is a UsageError); otherwise the given ones, and `out` must not hold a run already.
 */
export function runSettings<T extends Record<string, unknown>>(cmd: string, out: string, resume: boolean, current: T, given: Set<string>): { settings: T; resuming: boolean } {
  const file = join(out, RUN_FILE);
  if (!resume) {
    if (existsSync(file)) throw new UsageError(`${cmd}: --out ${out} holds a run already; add --resume to continue it, or choose another --out`);
    return { settings: current, resuming: false };
  }
  if (!existsSync(file)) throw new UsageError(`${cmd}: --resume: --out ${out} holds no run to resume (no ${RUN_FILE})`);
  const saved = readJson<{ command: string; settings: T }>(file);
  if (saved.command !== cmd) throw new UsageError(`${cmd}: --resume: ${out} holds a '${saved.command}' run`);
  for (const [k, v] of Object.entries(current)) {
    const flag = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    if (given.has(flag) && JSON.stringify(saved.settings[k]) !== JSON.stringify(v)) {
      throw new UsageError(`${cmd}: --resume: --${flag} ${JSON.stringify(v)} differs from the run's ${JSON.stringify(saved.settings[k])} (in ${file}); leave it out`);
    }
  }
  return { settings: saved.settings, resuming: true };
}

export function writeRunSettings(cmd: string, out: string, settings: Record<string, unknown>): void {
  writeJson(join(out, RUN_FILE), { command: cmd, settings });
}

/**
 * Checks, on the CPU, that `dir` holds a finished model (`configFile` and the final weights) and
 * says how to finish an interrupted run otherwise.
 */
export function checkFinishedModel(cmd: string, dir: string, configFile: string, trainCommand: string): void {
  if (!existsSync(join(dir, configFile))) throw new UsageError(`${cmd}: --checkpoint ${dir} holds no ${configFile} (not a run folder of '${trainCommand}')`);
  if (!existsSync(join(dir, MODEL_FILE))) {
    const latest = findLatestCheckpoint(checkpointsDir(dir));
    const how = latest ? `training stopped at ${latest}; finish it with \`transfuse ${trainCommand} --out ${dir} --resume\`` : 'it holds no checkpoint';
    throw new UsageError(`${cmd}: --checkpoint ${dir} holds no finished model: ${how}`);
  }
}
