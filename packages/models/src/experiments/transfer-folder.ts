/**
 * A transfer experiment's results folder holds the cells of one set of settings, whatever the grid.
 * A cell's result depends on its own parameters (family, arm, seed, n_s, n_t: its id) and on the
 * settings, never on which other seeds, sizes or families ran beside it, so slices of one grid
 * (seed 0 on a GPU today, seeds 1 and 2 on CPUs tomorrow, the flows next week) fill one folder, and
 * a run over their union finds every finished cell and reports them together.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, writeJson } from '../io/files.js';
import { FAMILIES } from './families.js';
import type { TransferProtocol } from './transfer-experiment.js';

/** What a folder's config.json records: the experiment and its settings (the grid lists left out). */
interface FolderConfig {
  experiment: string;
  config: Record<string, unknown>;
}

/**
 * The protocol without its grid (seeds, n_s and n_t may differ between the runs that share a
 * folder), plus the data choices that change every cell: the classes kept and the split seed,
 * where given (the caller leaves out defaults).
 */
export function transferSettings(protocolVersion: number, p: TransferProtocol, data: { classes?: number[]; splitSeed?: number }): Record<string, unknown> {
  const { seeds: _seeds, nsList: _ns, ntList: _nt, ...settings } = p;
  return JSON.parse(JSON.stringify({ protocolVersion, ...settings, ...data })) as Record<string, unknown>;
}

/**
 * Claims `dir` for these settings: the first run writes config.json; a later run must have the same
 * settings, and the same settings for every family both run (a family the folder has not seen is
 * added). Folders written before grids could be merged hold the grid lists too; they are ignored.
 */
export function claimTransferFolder(dir: string, experiment: string, settings: Record<string, unknown>): void {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) return writeJson(path, { experiment, config: settings });
  const have = readJson<FolderConfig>(path);
  const there: Record<string, unknown> = { ...have.config };
  for (const key of ['seeds', 'nsList', 'ntList']) delete there[key];
  const differs = settingsCheck((what) => `${dir} holds results of a different run (${path}): ${what} differ, so its finished cells would be mixed with this one's. Pass another --out, or delete the folder to start over.`);
  differs('the experiments', have.experiment, experiment);
  const common = (c: Record<string, unknown>) => Object.fromEntries(Object.entries(c).filter(([k]) => !(FAMILIES as readonly string[]).includes(k)));
  differs('the settings', common(there), common(settings));
  let added = false;
  for (const f of FAMILIES) {
    if (settings[f] === undefined) continue;
    if (there[f] === undefined) {
      there[f] = settings[f];
      added = true;
    } else differs(`the ${f} settings`, there[f], settings[f]);
  }
  if (added) writeJson(path, { experiment, config: there });
}

/** What a family's source cells depend on: its source budget and architecture, not its target budget, arms or sampler. */
function sourcePart(family: unknown): unknown {
  if (!family || typeof family !== 'object') return family;
  const { target: _t, arms: _a, samplerSteps: _s, ...rest } = family as Record<string, unknown>;
  return rest;
}

/**
 * Checks that folder `dir` trained its source cells under these settings, so that a run with
 * another target protocol (budget, arms) can take them instead of training them again: the same
 * experiment, the same common settings, and for each family both have, the same source budget
 * and architecture. Throws naming the difference.
 */
export function checkSourcesFolder(dir: string, experiment: string, settings: Record<string, unknown>): void {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new Error(`--sources-from ${dir}: no config.json there (not a transfer results folder)`);
  const have = readJson<FolderConfig>(path);
  const differs = settingsCheck((what) => `--sources-from ${dir}: ${what} differ, so its source models are not the ones this run would train.`);
  differs('the experiments', have.experiment, experiment);
  const common = (c: Record<string, unknown>) => Object.fromEntries(Object.entries(c).filter(([k]) => !['seeds', 'nsList', 'ntList', ...FAMILIES].includes(k)));
  differs('the settings', common(have.config), common(settings));
  for (const f of FAMILIES) if (have.config[f] !== undefined && settings[f] !== undefined) differs(`the ${f} source settings`, sourcePart(have.config[f]), sourcePart(settings[f]));
}

/** A check that two settings are equal in any key order; otherwise it throws `message(what)` with both values. */
function settingsCheck(message: (what: string) => string): (what: string, a: unknown, b: unknown) => void {
  return (what, a, b) => {
    if (sortedJson(a) === sortedJson(b)) return;
    throw new Error(`${message(what)}\n  there: ${JSON.stringify(a)}\n  now:   ${JSON.stringify(b)}`);
  };
}

/** JSON with object keys sorted, so that settings written in another key order compare equal. */
function sortedJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
  );
}
