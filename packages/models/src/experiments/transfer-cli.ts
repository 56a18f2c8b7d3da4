/**
 * `transfuse transfer --source DIR|FILE --target DIR|FILE ...`: the transfer experiment on a
 * user's own image sets, with the settings of a preset (smoke, demo, cpu, paper) and overrides.
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../cli/flags.js';
import { loadImageSource, type LoadedImages } from '../data/image-source.js';
import type { PixelRange } from '../metrics/image-w1.js';
import { ACTNORM_INIT_IMAGES, FAMILIES, type Family } from './families.js';
import { MNIST_USPS_PRESETS, withBudgets } from './mnist-usps.js';
import { runTransferExperiment, type TransferProtocol } from './transfer-experiment.js';
import { checkArms } from './transfer-summary.js';

export const TRANSFER_USAGE = `transfuse transfer --source DIR|FILE --target DIR|FILE [options]

  Pre-trains on the source images, transfers to the target images, and compares against a
  baseline trained on the target alone and a compute-matched baseline (same total steps).
  Formats: a folder of PNGs per class (DIR/<class>/*.png), .csv/.tsv (label, then pixels),
  .npy (with a labels .npy beside it), IDX (with its labels file), ESL text (USPS zip.*).

  --target-test DIR|FILE     held-out target images (default: a seeded stratified 30% of --target)
  --source-labels FILE       labels of .npy / IDX images (default: the matching file beside them)
  --target-labels FILE       likewise for the target (and --target-test-labels)
  --pixel-range LOW,HIGH     range of the stored pixel values (default: inferred and reported)
  --preset smoke|demo|cpu|paper   budgets, seeds and sizes (default demo)
  --unconditional            unconditional models (default: class-conditional)
  --classes 3,5              keep only these classes of both sets
  --size N                   resize both sets to N x N (default: the preset's, 16)
  --ns 100,1000              source sizes n_s          --nt 100,300,all   target sizes n_t
  --seeds 0,1,2              seeds                     --families diffusion,flow
  --arms transfer,variant,baseline,matched   arms to run ('matched' is the compute-matched baseline)
  --source-cap N             the source runs' most steps (default: the preset's); raise it when the
  --target-cap N             report says a cap, not the validation loss, ended runs (likewise for the target)
  --target-check-epochs N    check the target runs' validation loss at step 0 and at least every N passes
                             over their data (for small n_t, when the report says runs kept their first check)
  --target-ema DECAY         validate, keep and sample an average (EMA) of the target runs' weights with
                             this largest decay, e.g. 0.999 (when the kept raw weights are noisy)
  --target-lr RATE           the target runs' peak learning rate (default: the preset's), e.g. for a small
                             target set that the preset's rate overfits within a few steps
  --target-actnorm-prior N   flows: set the target flows' ActNorm layers from up to ${ACTNORM_INIT_IMAGES} of their training
                             images, each pixel's variance shrunk toward the layer's pooled one with the
                             weight of N images, e.g. 256 (the first batch alone ruins a flow at small n_t)
  --sources-from DIR         take the source models of an earlier results folder instead of training them
                             (its settings must match but for the target budget and arms)
  --out DIR                  results folder (resumable; default results/transfer)
`;

function list(flag: string, value: string, parse: (s: string) => number | string): (number | string)[] {
  const items = value.split(',').map((s) => s.trim());
  return items.map((s) => {
    const v = parse(s);
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`--${flag} takes a comma-separated list, got '${value}' ('${s}' is not a number)`);
    return v;
  });
}

const whole = (flag: string, min: number) => (s: string) => {
  const v = Number(s);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${flag} takes whole numbers of at least ${min}, got '${s}'`);
  return v;
};

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim());
  const bad = items.filter((s) => !allowed.includes(s as T));
  if (bad.length) throw new Error(`--${flag} takes ${allowed.join(', ')}, got '${bad.join(',')}'`);
  return items as T[];
}

function pixelRange(value: string | undefined): PixelRange | undefined {
  if (value === undefined) return undefined;
  const [lo, hi] = value.split(',').map(Number);
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi) || value.split(',').length !== 2) throw new Error(`--pixel-range takes LOW,HIGH with LOW < HIGH, e.g. 0,255; got '${value}'`);
  return [lo, hi];
}

/** Parses the transfer command's flags into a protocol (throws naming the flag at fault). */
export function parseTransferArgs(argv: string[]) {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      source: { type: 'string' },
      target: { type: 'string' },
      'target-test': { type: 'string' },
      'source-labels': { type: 'string' },
      'target-labels': { type: 'string' },
      'target-test-labels': { type: 'string' },
      'pixel-range': { type: 'string' },
      preset: { type: 'string', default: 'demo' },
      unconditional: { type: 'boolean', default: false },
      classes: { type: 'string' },
      size: { type: 'string' },
      ns: { type: 'string' },
      nt: { type: 'string' },
      seeds: { type: 'string' },
      families: { type: 'string' },
      arms: { type: 'string' },
      'source-cap': { type: 'string' },
      'target-cap': { type: 'string' },
      'target-check-epochs': { type: 'string' },
      'target-ema': { type: 'string' },
      'target-lr': { type: 'string' },
      'target-actnorm-prior': { type: 'string' },
      'sources-from': { type: 'string' },
      out: { type: 'string' },
      name: { type: 'string' },
    },
  });
  if (!v.source) throw new Error('--source DIR|FILE is required');
  if (!v.target) throw new Error('--target DIR|FILE is required');
  const base = (MNIST_USPS_PRESETS as Record<string, (typeof MNIST_USPS_PRESETS)['demo']>)[v.preset!];
  if (!base) throw new Error(`--preset takes ${Object.keys(MNIST_USPS_PRESETS).join(', ')}, got '${v.preset}'`);
  const atLeast1 = (flag: 'source-cap' | 'target-cap' | 'target-check-epochs') => (v[flag] === undefined ? undefined : (whole(flag, 1)(v[flag]!) as number));
  const ema = v['target-ema'] === undefined ? undefined : Number(v['target-ema']);
  if (ema !== undefined && !(ema > 0 && ema < 1)) throw new Error(`--target-ema takes a decay between 0 and 1 (exclusive), e.g. 0.999; got '${v['target-ema']}'`);
  const lr = v['target-lr'] === undefined ? undefined : Number(v['target-lr']);
  if (lr !== undefined && !(lr > 0 && lr <= 1)) throw new Error(`--target-lr takes a learning rate above 0 and at most 1, e.g. 1e-4; got '${v['target-lr']}'`);
  const prior = v['target-actnorm-prior'] === undefined ? undefined : Number(v['target-actnorm-prior']);
  if (prior !== undefined && !(prior >= 0 && Number.isFinite(prior))) throw new Error(`--target-actnorm-prior takes a number of images >= 0, e.g. 256; got '${v['target-actnorm-prior']}'`);
  const budgets = { sourceCap: atLeast1('source-cap'), targetCap: atLeast1('target-cap'), targetCheckEpochs: atLeast1('target-check-epochs'), targetEma: ema, targetLr: lr, targetActnormPrior: prior };
  const protocol: TransferProtocol = { ...withBudgets(base, budgets), conditional: !v.unconditional };
  if (v.size) protocol.size = whole('size', 4)(v.size);
  if (v.ns) protocol.nsList = list('ns', v.ns, whole('ns', 2)) as number[];
  if (v.nt) protocol.ntList = list('nt', v.nt, (s) => (s === 'all' ? s : whole('nt', 2)(s))) as (number | 'all')[];
  if (v.seeds) protocol.seeds = list('seeds', v.seeds, whole('seeds', 0)) as number[];
  const families: Family[] = v.families ? oneOf('families', v.families, FAMILIES) : FAMILIES.filter((f) => protocol[f]);
  for (const f of FAMILIES) {
    if (!families.includes(f)) delete protocol[f];
    else if (!protocol[f]) throw new Error(`--families: preset '${v.preset}' has no ${f} settings (it runs ${FAMILIES.filter((x) => base[x]).join(', ')})`);
  }
  if (prior !== undefined && !protocol.flow) throw new Error(`--target-actnorm-prior sets the flows' ActNorm init; --families ${families.join(',')} runs no flows`);
  if (v.arms) {
    const arms = checkArms(v.arms.split(',').map((s) => s.trim()));
    for (const f of FAMILIES) if (protocol[f]) protocol[f]!.arms = arms;
  }
  const classes = v.classes ? (list('classes', v.classes, whole('classes', 0)) as number[]) : undefined;
  const range = pixelRange(v['pixel-range']);
  return { v, protocol, classes, range, families };
}

/** Runs the command; every flag is checked, and the files read, before `gpu()` starts the adapter. */
export async function transferCli(argv: string[], log: (msg: string) => void, gpu: () => Promise<void>): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(TRANSFER_USAGE);
    return;
  }
  let parsed: ReturnType<typeof parseTransferArgs>;
  try {
    parsed = parseTransferArgs(argv);
  } catch (e) {
    throw new UsageError(`transfer: ${(e as Error).message}`);
  }
  const { v, protocol, classes, range } = parsed;
  const load = (path: string, labels: string | undefined): LoadedImages => {
    const set = loadImageSource(resolve(path), { labels, pixelRange: range });
    log(`${path}: ${set.n} images of ${set.height}x${set.width} (${set.format}, pixels read from [${set.pixelRange.join(', ')}]), classes ${[...new Set(set.labels)].sort((a, b) => a - b).join(',')}`);
    return set;
  };
  const source = load(v.source!, v['source-labels']);
  const target = load(v.target!, v['target-labels']);
  const targetTest = v['target-test'] ? load(v['target-test'], v['target-test-labels']) : undefined;
  const out = resolve(v.out ?? join('results', 'transfer'));
  await gpu();
  const started = performance.now();
  await runTransferExperiment({
    name: v.name ?? `transfer ${basename(v.source!)} -> ${basename(v.target!)}`,
    presetName: v.preset!,
    protocol,
    source,
    target,
    targetTest,
    classes,
    sourceName: basename(v.source!),
    targetName: basename(v.target!),
    out,
    sourcesFrom: v['sources-from'] && resolve(v['sources-from']),
    log,
  });
  process.stdout.write(`\n${readFileSync(join(out, 'results.md'), 'utf8')}\n`);
  log(`Results, sample grids and plots in ${out} (${((performance.now() - started) / 60000).toFixed(1)} min)`);
}
