#!/usr/bin/env node
/**
 * The `transfuse` command line. Each subcommand declares its flags (cli/flags.ts); the whole
 * command line is checked before any data is read or the GPU is started, and a bad one exits
 * with code 2 and one line naming the flag, the value and what is allowed.
 */
import { existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { init, runtime, shutdown } from '@transfuse/core';
import { command, DATA_FLAG, flagsHelp, parseFlags, UsageError, type Command } from './cli/flags.js';
import { resolveDataDir } from './data/digits.js';
import { diffusionSample, diffusionTrain } from './diffusion/cli.js';
import { EXPERIMENTS, runExperiment } from './experiments/index.js';
import { ACTNORM_INIT_IMAGES, FAMILIES, type Family } from './experiments/families.js';
import { ARMS, type Arm } from './experiments/transfer-summary.js';
import { flowEval, flowSample, flowTrain } from './flows/cli.js';
import { transferCli } from './experiments/transfer-cli.js';
import { QUEUE_EXPERIMENTS, type QueueExperiment } from './queue/cell-job.js';
import { parseRedisUrl } from './queue/redis-url.js';

const EXPERIMENT_PRESETS = [...new Set(Object.values(EXPERIMENTS).flatMap((e) => e.presets))];

/** The flags of `transfuse experiment` that only the mnist-usps experiments take (their grid and budgets). */
const MNIST_USPS_FLAGS = ['ns', 'families', 'seeds', 'nt', 'arms', 'source-cap', 'target-cap', 'target-check-epochs', 'target-ema', 'target-lr', 'target-actnorm-prior', 'sources-from'] as const;

interface ExperimentFlags {
  out?: string;
  data?: string;
  ns?: number[];
  families?: string[];
  seeds?: number[];
  nt?: string;
  arms?: string[];
  'source-cap'?: number;
  'target-cap'?: number;
  'target-check-epochs'?: number;
  'target-ema'?: number;
  'target-lr'?: number;
  'target-actnorm-prior'?: number;
  'sources-from'?: string;
  queue?: string;
  status?: boolean;
  requeue?: boolean;
}

async function experiment(name: string, preset: string, v: ExperimentFlags, log: (m: string) => void, gpu: () => Promise<void>): Promise<void> {
  const e = EXPERIMENTS[name];
  if (!e.presets.includes(preset)) throw new UsageError(`experiment ${name}: --preset must be one of ${e.presets.join(', ')}, got '${preset}'`);
  const given = MNIST_USPS_FLAGS.filter((f) => v[f] !== undefined);
  if (given.length && !e.takesOverrides) {
    throw new UsageError(`experiment ${name}: ${given.map((f) => `--${f}`).join(', ')} ${given.length === 1 ? 'applies' : 'apply'} to the mnist-usps experiments only`);
  }
  const nt = v.nt === undefined ? undefined : parseNtList(`experiment ${name}`, v.nt);
  const overrides = { ns: v.ns, families: v.families as Family[] | undefined, seeds: v.seeds, nt, arms: v.arms as Arm[] | undefined, sourceCap: v['source-cap'], targetCap: v['target-cap'], targetCheckEpochs: v['target-check-epochs'], targetEma: v['target-ema'], targetLr: v['target-lr'], targetActnormPrior: v['target-actnorm-prior'], sourcesFrom: v['sources-from'] && resolve(v['sources-from']) };
  if ((v.status || v.requeue) && !v.queue) throw new UsageError(`experiment ${name}: --${v.status ? 'status' : 'requeue'} needs --queue redis://HOST:PORT/DB`);
  if (v.status && v.requeue) throw new UsageError(`experiment ${name}: --status and --requeue are separate actions; give one`);
  const out = resolve(v.out ?? join('results', name === 'mnist-usps-conditional' && preset === 'demo' ? 'demo' : `${name}-${preset}`));
  const dataDir = resolveDataDir(v.data);
  if (v.queue) {
    if (!(QUEUE_EXPERIMENTS as readonly string[]).includes(name)) throw new UsageError(`experiment ${name}: --queue runs the transfer experiments (${QUEUE_EXPERIMENTS.join(', ')}), not '${name}'`);
    // Workers train in their own copy of the folder; copy the source cells in before enqueueing instead.
    if (v['sources-from']) throw new UsageError(`experiment ${name}: --sources-from runs here, not through --queue (run it without --queue first, or copy the source cells and models into the folder)`);
    const connection = parseRedisUrl(`experiment ${name}`, v.queue);
    // The queue client is loaded only here and in `transfuse worker`.
    const { gridCommand } = await import('./queue/commands.js');
    const action = v.status ? 'status' : v.requeue ? 'requeue' : 'enqueue';
    return gridCommand({ connection, experiment: name as QueueExperiment, preset, ...overrides, out, dataDir, action, log });
  }
  await gpu();
  const started = performance.now();
  const report = await runExperiment(name, { preset, dataDir, out, log, ...overrides });
  process.stdout.write(`\n${report}\n`);
  log(`Results, sample grids and plots in ${out} (${((performance.now() - started) / 60000).toFixed(1)} min)`);
}

/** `--nt 100,all`: distinct whole numbers of at least 2, or 'all'. */
function parseNtList(cmd: string, raw: string): (number | 'all')[] {
  const items = raw.split(',').map((x) => (x === 'all' ? 'all' : /^\d+$/.test(x) && Number(x) >= 2 && Number(x) <= 1_000_000 ? Number(x) : null));
  if (items.some((x) => x === null) || new Set(items).size !== items.length) throw new UsageError(`${cmd}: --nt must be distinct whole numbers from 2 to 1000000 or 'all', comma-separated, got '${raw}'`);
  return items as (number | 'all')[];
}

/** Every command, by its words. A new command is one line here plus its own file. */
const COMMANDS: Record<string, Command<any>> = {
  demo: command({
    synopsis: 'transfuse demo [--out DIR] [--data DIR]: MNIST -> USPS conditional diffusion transfer, compact (<= 15 min on 2 CPU cores)',
    flags: { out: { type: 'string', help: 'results folder (default results/demo)' }, data: DATA_FLAG },
    run: (v, { log, gpu }) => experiment('mnist-usps-conditional', 'demo', v, log, gpu),
  }),
  experiment: command({
    synopsis: `transfuse experiment NAME --preset P [options]: run an experiment (${Object.keys(EXPERIMENTS).join(', ')}); finished cells are kept, so a rerun resumes`,
    words: { name: 'NAME', values: Object.keys(EXPERIMENTS) },
    flags: {
      preset: { type: 'choice', values: EXPERIMENT_PRESETS, required: true, help: 'smoke (CI, minutes), demo (npm run demo), cpu (hours on 2 cores), paper (GPU scale)' },
      out: { type: 'string', help: 'results folder (default results/NAME-PRESET)' },
      data: DATA_FLAG,
      ns: { type: 'ints', min: 1, max: 1_000_000, help: 'mnist-usps only: source sizes, e.g. 100,300' },
      families: { type: 'choices', values: FAMILIES, help: 'mnist-usps only: model families' },
      seeds: { type: 'ints', min: 0, max: 2 ** 31 - 1, help: 'mnist-usps only: seeds, e.g. 0' },
      nt: { type: 'string', help: "mnist-usps only: target sizes, e.g. 100,all" },
      arms: { type: 'choices', values: ARMS, help: "mnist-usps only: the arms to run, e.g. transfer,variant,baseline,matched ('matched' needs a transfer arm)" },
      'source-cap': { type: 'int', min: 1, max: 10_000_000, help: "mnist-usps only: the source runs' most steps (the preset's otherwise); raise it when the report says a cap ended them" },
      'target-cap': { type: 'int', min: 1, max: 10_000_000, help: "mnist-usps only: likewise for the target runs (transfer, baseline; 'matched' is capped at the transfer arm's total)" },
      'target-check-epochs': { type: 'int', min: 1, max: 1_000_000, help: 'mnist-usps only: check the target runs at step 0 and at least every N passes over their data (for small n_t, where the report says runs kept their first check)' },
      'target-ema': { type: 'number', min: 0, above: true, max: 1, below: true, help: "mnist-usps only: validate, keep and sample an average (EMA) of the target runs' weights with this largest decay, e.g. 0.999 (for small n_t, where the kept raw weights are noisy)" },
      'target-lr': { type: 'number', min: 0, above: true, max: 1, help: "mnist-usps only: the target runs' peak learning rate (the preset's otherwise), e.g. for a small n_t that the preset's rate overfits within a few steps" },
      'target-actnorm-prior': { type: 'number', min: 0, max: 1_000_000, help: `mnist-usps only, flows: set the target flows' ActNorm layers from up to ${ACTNORM_INIT_IMAGES} of their training images, each pixel's variance shrunk toward the layer's pooled one with the weight of N images, e.g. 256 (the first batch alone ruins a flow at small n_t)` },
      'sources-from': { type: 'string', help: 'mnist-usps only: a results folder whose source models this run takes instead of training them (its settings must match but for the target budget and arms)' },
      queue: { type: 'string', help: 'redis://[:PASSWORD@]HOST:PORT/DB: queue the cells for `transfuse worker`s instead of running them here' },
      status: { type: 'bool', help: 'with --queue: show the grid\'s done / running / waiting / failed cells (and write the report once all are done)' },
      requeue: { type: 'bool', help: 'with --queue: rebuild the grid\'s queue from the results folder (finished cells stay done; failed ones run again)' },
    },
    run: (v, { log, gpu, words }) => experiment(words[0], v.preset, v, log, gpu),
  }),
  worker: command({
    synopsis: 'transfuse worker --queue URL --results DIR [--data DIR]: run queued experiment cells, one at a time, until stopped',
    flags: {
      queue: { type: 'string', required: true, help: 'redis://[:PASSWORD@]HOST:PORT/DB of the queue' },
      results: { type: 'string', required: true, help: 'the folder holding the grids\' results folders (the shared mount; the parent of the --out given when enqueueing)' },
      data: DATA_FLAG,
      'lock-seconds': { type: 'int', min: 5, max: 86_400, default: 300, help: 'a killed worker\'s cell is taken again by another worker after this long' },
      'until-empty': { type: 'bool', help: 'exit once no cell is waiting or running on the queue' },
    },
    run: async (v, { log, gpu }) => {
      const connection = parseRedisUrl('worker', v.queue);
      const results = resolve(v.results);
      if (!existsSync(results)) throw new UsageError(`worker: --results ${results} does not exist (mount the shared results folder there)`);
      const dataDir = resolveDataDir(v.data);
      const { runWorker } = await import('./queue/commands.js');
      await runWorker({ connection, dataDir, results, lockSeconds: v['lock-seconds'], untilEmpty: v['until-empty'], log, gpu });
    },
  }),
  'diffusion train': diffusionTrain,
  'diffusion sample': diffusionSample,
  'flow train': flowTrain,
  'flow sample': flowSample,
  'flow eval': flowEval,
};

const USAGE = `transfuse <command> [options]     (transfuse <command> --help lists a command's options)

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${(name + (c.words ? ` ${c.words.name}` : '')).padEnd(22)}${c.synopsis.replace(/^[^:]*: /, '')}`)
  .join('\n')}

  transfer              the transfer experiment on your own source and target images (transfuse transfer --help)

experiments: ${Object.keys(EXPERIMENTS).join(', ')}
experiment presets: ${EXPERIMENT_PRESETS.join(', ')}
Training commands save checkpoints into OUT/checkpoints (--checkpoint-every N, --keep K); Ctrl-C saves
one and stops; --resume continues from the newest.
`;

const log = (m: string) => process.stderr.write(`${m}\n`);

/** Splits argv into the command, its positional words and its flags; throws UsageError for an unknown one. */
function findCommand(argv: string[]): { name: string; cmd: Command<any>; words: string[]; rest: string[] } | null {
  const [a, b] = argv;
  if (a === undefined || a === '--help' || a === '-h' || a === 'help') return null;
  const name = b !== undefined && `${a} ${b}` in COMMANDS ? `${a} ${b}` : a;
  const cmd = COMMANDS[name];
  if (!cmd) {
    const subs = Object.keys(COMMANDS).filter((k) => k.startsWith(`${a} `));
    if (subs.length && (b === undefined || b === '--help' || b === '-h')) throw new UsageError(`transfuse ${a}: name a subcommand: ${subs.join(', ')}`);
    throw new UsageError(`transfuse: unknown command '${subs.length ? `${a} ${b}` : a}' (commands: ${Object.keys(COMMANDS).join(', ')})`);
  }
  let rest = argv.slice(name.split(' ').length);
  const words: string[] = [];
  if (cmd.words && !(rest[0] === '--help' || rest[0] === '-h')) {
    const w = rest[0];
    if (w === undefined || w.startsWith('-')) throw new UsageError(`${name}: ${cmd.words.name} is required (one of ${cmd.words.values.join(', ')})`);
    if (!cmd.words.values.includes(w)) throw new UsageError(`${name}: ${cmd.words.name} must be one of ${cmd.words.values.join(', ')}, got '${w}'`);
    words.push(w);
    rest = rest.slice(1);
  }
  return { name, cmd, words, rest };
}

async function main(argv: string[]): Promise<void> {
  const gpu = async () => {
    await init();
    // In auto mode init() itself says which adapter it chose and why.
    if (process.env.TRANSFUSE_BACKEND) log(`transfuse: WebGPU adapter ${runtime().acquired.backend}`);
  };
  // `transfer` parses its own flags (experiments/transfer-cli.ts), also before the GPU starts.
  if (argv[0] === 'transfer') return transferCli(argv.slice(1), log, gpu);
  const found = findCommand(argv);
  if (!found) {
    process.stdout.write(USAGE);
    return;
  }
  const { name, cmd, words, rest } = found;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(flagsHelp(cmd.synopsis, cmd.flags));
    return;
  }
  const v = parseFlags(`${name}${words.length ? ` ${words.join(' ')}` : ''}`, rest, cmd.flags);
  await cmd.run(v, { log, gpu, words });
}

main(process.argv.slice(2))
  .then(() => {
    shutdown();
    // Dawn keeps the event loop alive; everything is written by now.
    process.exit(0);
  })
  .catch((e: Error) => {
    // UsageErrors start with the command's words; other errors get the program's name.
    process.stderr.write(e.message.startsWith('transfuse') ? `${e.message}\n` : e instanceof UsageError ? `transfuse ${e.message}\n` : `transfuse: ${e.message}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  });
