/**
 * Autotuning of kernel variants. An op asks `tunedVariant(family, bucket, candidates, setup)`:
 * the answer is a forced variant (TRANSFUSE_TUNE_FORCE or `forceVariant`), else the one measured
 * for this adapter, family and shape bucket, else `undefined`, and then the family's pure choice
 * function (in @transfuse/kernels) applies its fixed rule. Ops record work synchronously while
 * measuring needs GPU syncs, so when tuning is on an unknown bucket is queued and measured by
 * `await tunePending()` (the bench calls it after its warm-up step), on inputs of the shape first
 * seen, timed around a sync. Choices are kept in a `TuneStore`: memory by default; Node code can
 * install a file store (`@transfuse/core/node`), which browser bundles never import.
 *
 * Tuning is off unless TRANSFUSE_TUNE=1 or `setTuning(true)`: off, every op takes the rule's
 * choice (or a stored one), so tests and CI runs never compile candidates.
 */
import { runtime } from './runtime/current.js';

export interface TuneStore {
  get(key: string): string | undefined;
  set(key: string, variant: string): void;
}

/** A run of one variant of a queued bucket, on inputs it owns. */
export interface TuneTrial {
  run(variant: string): void;
  dispose(): void;
}

export interface TuneResult {
  key: string;
  variant: string;
  /** Fastest of the timed runs per candidate, in milliseconds, by variant name. */
  ms: Record<string, number>;
}

export function memoryTuneStore(): TuneStore {
  const m = new Map<string, string>();
  return { get: (k) => m.get(k), set: (k, v) => void m.set(k, v) };
}

let store: TuneStore = memoryTuneStore();
let enabled: boolean | null = null;
const forced = new Map<string, string>();
const pending = new Map<string, { family: string; candidates: string[]; setup: () => TuneTrial }>();

/** Where measured choices are kept (memory by default). */
export function setTuneStore(s: TuneStore): void {
  store = s;
}

/** Turns measuring on or off; without a call, TRANSFUSE_TUNE=1 turns it on. */
export function setTuning(on: boolean): void {
  enabled = on;
}

export function tuningEnabled(): boolean {
  if (enabled !== null) return enabled;
  const v = typeof process === 'undefined' ? undefined : process.env?.TRANSFUSE_TUNE;
  if (v === undefined || v === '' || v === '0') return false;
  if (v === '1') return true;
  throw new Error(`TRANSFUSE_TUNE must be 0 or 1, got '${v}'`);
}

/** Makes every op of `family` use `variant` (null lifts it); wins over measurements and the rule. */
export function forceVariant(family: string, variant: string | null): void {
  if (variant === null) forced.delete(family);
  else forced.set(family, variant);
}

/** TRANSFUSE_TUNE_FORCE="family=variant,family=variant", read once. */
function envForced(): Map<string, string> {
  const spec = typeof process === 'undefined' ? undefined : process.env?.TRANSFUSE_TUNE_FORCE;
  const out = new Map<string, string>();
  for (const part of (spec ?? '').split(',').filter(Boolean)) {
    const [family, variant, ...rest] = part.split('=');
    if (!family || !variant || rest.length) throw new Error(`TRANSFUSE_TUNE_FORCE wants family=variant pairs separated by commas, got '${spec}'`);
    out.set(family.trim(), variant.trim());
  }
  return out;
}
const fromEnv = envForced();

function adapterKey(): string {
  const { backend, adapter } = runtime().acquired;
  const info = adapter.info;
  return `${backend}:${info.vendor}/${info.architecture}/${info.device}/${info.description}`;
}

/**
 * The variant for this bucket: forced, else measured, else undefined (use the rule). A forced
 * variant that is not a candidate here is an error that names the candidates.
 */
export function tunedVariant(family: string, bucket: string, candidates: readonly string[], setup: () => TuneTrial): string | undefined {
  const force = forced.get(family) ?? fromEnv.get(family);
  if (force !== undefined) {
    if (!candidates.includes(force)) throw new Error(`forced ${family} variant '${force}' is not one of this shape's candidates: ${candidates.join(', ')} (TRANSFUSE_TUNE_FORCE or forceVariant)`);
    return force;
  }
  const key = `${adapterKey()}|${family}|${bucket}`;
  const hit = store.get(key);
  if (hit !== undefined && candidates.includes(hit)) return hit;
  if (tuningEnabled() && !pending.has(key)) pending.set(key, { family, candidates: [...candidates], setup });
  return undefined;
}

/** Buckets queued for measuring. */
export function pendingTunes(): number {
  return pending.size;
}

/**
 * Measures every queued bucket: each candidate runs once untimed (it compiles), then `reps`
 * times, each timed around a sync; the lowest fastest run wins and is stored (the minimum, since
 * other load on the machine only ever adds time).
 */
export async function tunePending(reps = 5): Promise<TuneResult[]> {
  const rt = runtime();
  await rt.sync();
  const results: TuneResult[] = [];
  for (const [key, job] of [...pending]) {
    pending.delete(key);
    const trial = job.setup();
    const ms: Record<string, number> = {};
    try {
      for (const v of job.candidates) {
        trial.run(v);
        await rt.sync();
        const times: number[] = [];
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          trial.run(v);
          await rt.sync();
          times.push(performance.now() - t0);
        }
        ms[v] = Math.min(...times);
      }
    } finally {
      trial.dispose();
    }
    const variant = job.candidates.reduce((a, b) => (ms[b] < ms[a] ? b : a));
    store.set(key, variant);
    results.push({ key, variant, ms });
  }
  return results;
}
