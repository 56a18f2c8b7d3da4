/**
 * The `transfuse` CLI as a user runs it (the built dist/cli.js in a child process): bad command
 * lines exit with code 2 and one line naming the flag before any GPU work; `flow train`
 * unconditional (the default) and conditional on MNIST and USPS, then sample and eval.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildCli, runCli } from './cli-helpers.js';

const DATA = process.env.TRANSFUSE_DATA ?? new URL('../../../../shared/data/', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'transfuse-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => buildCli());

/** A folder that looks like a started flow run (run.json), for the --resume checks. */
function startedRun(): string {
  const dir = join(root, 'started');
  mkdirSync(dir, { recursive: true });
  const settings = { dataset: 'usps', preset: 'small', conditional: false, steps: 10, batch: 8, lr: 0.001, n: null, alpha: 1e-6, evalN: 2000, seed: 0 };
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ command: 'flow train', settings }));
  return dir;
}

describe('bad command lines', () => {
  const missing = join(root, 'does-not-exist');
  const started = startedRun();
  const empty = join(root, 'empty');
  mkdirSync(empty, { recursive: true });
  // [arguments, what the one-line message must name]
  const cases: [string[], RegExp][] = [
    [['foo'], /unknown command 'foo'/],
    [['flow'], /flow: name a subcommand: flow train, flow sample, flow eval/],
    [['flow', 'bogus'], /unknown command 'flow bogus'/],
    [['diffusion', 'train', '--dataset', 'foo'], /--dataset must be one of mnist, usps, got 'foo'/],
    [['diffusion', 'train', '--classes', '11'], /--classes must be .* from 0 to 9, got '11'/],
    [['diffusion', 'train', '--classes', '3,3'], /--classes must be .*distinct.*got '3,3'/],
    [['diffusion', 'train', '--n', '0'], /--n must be an integer >= 1, got '0'/],
    [['diffusion', 'train', '--batch', '0'], /--batch must be an integer from 1 to 4096, got '0'/],
    [['diffusion', 'train', '--steps=-5'], /--steps must be an integer >= 1, got '-5'/],
    [['diffusion', 'train', '--steps', '-5'], /--steps must be an integer >= 1, got '-5'/],
    [['diffusion', 'train', '--batch=-4'], /--batch must be an integer from 1 to 4096, got '-4'/],
    [['diffusion', 'train', '--steps', '1.5'], /--steps must be an integer >= 1, got '1.5'/],
    [['diffusion', 'train', '--size', '20'], /--size must be one of 16, 28, 32, got '20'/],
    [['diffusion', 'train', '--preset', 'huge'], /--preset must be one of tiny, .*got 'huge'/],
    [['diffusion', 'train', '--lr', '0'], /--lr must be a number > 0 and <= 1, got '0'/],
    [['diffusion', 'train', '--lr', 'abc'], /--lr must be a number .*got 'abc'/],
    [['diffusion', 'train', '--ema', '1'], /--ema must be a number >= 0 and < 1, got '1'/],
    [['diffusion', 'train', '--bogus', '1'], /unknown flag --bogus/],
    [['diffusion', 'train', '--steps'], /--steps needs a value/],
    [['diffusion', 'train', '--conditional=yes'], /--conditional is a switch and takes no value/],
    [['diffusion', 'train', '--steps', '10', '--steps', '20'], /--steps is given twice/],
    [['diffusion', 'train', 'stray'], /unexpected argument 'stray'/],
    [['diffusion', 'sample'], /--checkpoint is required/],
    [['diffusion', 'sample', '--checkpoint', missing, '--n', '0'], /--n must be an integer from 1 to 100000, got '0'/],
    [['diffusion', 'sample', '--checkpoint', missing, '--sampler', 'foo'], /--sampler must be one of ddim, ddpm, got 'foo'/],
    [['diffusion', 'sample', '--checkpoint', missing, '--sampler-steps', '0'], /--sampler-steps must be an integer from 1 to 1000, got '0'/],
    [['diffusion', 'sample', '--checkpoint', missing], /--checkpoint .*does-not-exist holds no unet.json/],
    [['flow', 'train', '--preset', 'foo'], /--preset must be one of .*small-cond, got 'foo'/],
    [['flow', 'train', '--preset', 'realnvp-cond'], /--preset realnvp-cond is conditional; pass --conditional/],
    [['flow', 'train', '--conditional', '--preset', 'small'], /--preset small is unconditional/],
    [['flow', 'train', '--alpha', '0.5'], /--alpha must be a number >= 0 and < 0.5, got '0.5'/],
    [['flow', 'train', '--eval-n', '0'], /--eval-n must be an integer from 1 to 2000, got '0'/],
    [['flow', 'train', '--checkpoint-every', '0'], /--checkpoint-every must be an integer >= 1, got '0'/],
    [['flow', 'train', '--keep', '0'], /--keep must be an integer >= 1, got '0'/],
    [['flow', 'train', '--seed', '-1'], /--seed must be an integer from 0 to 4294967295, got '-1'/],
    [['flow', 'train', '--resume', '--out', empty], /--resume: --out .*empty holds no run to resume/],
    [['flow', 'train', '--out', started], /--out .*started holds a run already; add --resume/],
    [['flow', 'train', '--resume', '--out', started, '--lr', '0.5'], /--resume: --lr 0.5 differs from the run's 0.001/],
    [['flow', 'eval', '--checkpoint', missing, '--split', 'val'], /--split must be one of train, test, got 'val'/],
    [['flow', 'sample', '--checkpoint', missing, '--n=-1'], /--n must be an integer from 1 to 100000, got '-1'/],
    [['flow', 'sample', '--checkpoint', started], /--checkpoint .*started holds no flow.json/],
    [['experiment', 'bogus', '--preset', 'smoke'], /NAME must be one of mnist-usps-conditional, .*got 'bogus'/],
    [['experiment', 'mnist-usps-conditional'], /--preset is required/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'huge'], /--preset must be one of smoke, demo, cpu, paper, got 'huge'/],
    [['experiment', 'cheng-synthetic', '--preset', 'demo'], /--preset must be one of smoke, cpu, paper, got 'demo'/],
    [['experiment', 'cheng-synthetic', '--preset', 'smoke', '--ns', '100'], /--ns applies to the mnist-usps experiments only/],
    [['experiment', 'cheng-synthetic', '--preset', 'smoke', '--seeds', '1'], /--seeds applies to the mnist-usps experiments only/],
    [['experiment', 'cheng-synthetic', '--preset', 'smoke', '--source-cap', '100'], /--source-cap applies to the mnist-usps experiments only/],
    [['experiment', 'cheng-synthetic', '--preset', 'smoke', '--ns', '100', '--arms', 'transfer'], /--ns, --arms apply to the mnist-usps experiments only/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--arms', 'transfer,magic'], /--arms must be a comma-separated list of transfer, variant, baseline, matched/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--target-check-epochs', '0'], /--target-check-epochs must be an integer from 1 to 1000000, got '0'/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--target-ema', '1'], /--target-ema must be a number > 0 and < 1, got '1'/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--target-lr', '0'], /--target-lr must be a number > 0 and <= 1, got '0'/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--target-actnorm-prior', '-1'], /--target-actnorm-prior must be a number >= 0 and <= 1000000, got '-1'/],
    [['experiment', 'cheng-synthetic', '--preset', 'smoke', '--target-actnorm-prior', '256'], /--target-actnorm-prior applies to the mnist-usps experiments only/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--sources-from', 'x', '--queue', 'redis://127.0.0.1:6379/0'], /--sources-from runs here, not through --queue/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--source-cap', '0'], /--source-cap must be an integer from 1 to 10000000, got '0'/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--target-cap', '1.5'], /--target-cap must be an integer from 1 to 10000000, got '1.5'/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--families', 'gan'], /--families must be a comma-separated list of diffusion, flow, got 'gan'/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--nt', '1'], /--nt must be distinct whole numbers from 2 to 1000000 or 'all', comma-separated, got '1'/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--status'], /--status needs --queue redis:\/\/HOST:PORT\/DB/],
    [['experiment', 'mnist-usps-conditional', '--preset', 'smoke', '--queue', 'http://127.0.0.1:6379'], /--queue must be redis:\/\/\[:PASSWORD@\]HOST:PORT\[\/DB\]/],
    [['experiment', 'cheng-synthetic', '--preset', 'smoke', '--queue', 'redis://127.0.0.1:6379/0'], /--queue runs the transfer experiments .*not 'cheng-synthetic'/],
    [['worker', '--results', empty], /worker: --queue is required \(redis:/],
    [['worker', '--queue', 'redis://127.0.0.1:6379/0', '--results', missing], /worker: --results .* does not exist/],
    [['demo', '--out'], /--out needs a value/],
  ];

  test(`${cases.length} bad invocations: exit code 2, one line naming the flag, no GPU adapter requested`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      const [args, message] = cases[i];
      const what = `transfuse ${args.join(' ')}`;
      expect(r.code, `${what}\n${r.stderr}`).toBe(2);
      expect(r.stderr, what).toMatch(message);
      expect(r.stderr.trim().split('\n'), `${what}: one line`).toHaveLength(1);
      expect(r.stderr, what).toMatch(/^transfuse/);
      expect(r.gpu, `${what} imported webgpu`).toBe(false);
    });
  });

  test('--help: the global usage lists every command and preset; each subcommand has its own', async () => {
    const global = await runCli(['--help']);
    expect(global.code).toBe(0);
    for (const word of ['demo', 'experiment NAME', 'diffusion train', 'diffusion sample', 'flow train', 'flow sample', 'flow eval', 'smoke, demo, cpu, paper']) expect(global.stdout).toContain(word);
    const train = await runCli(['flow', 'train', '--steps', '-5', '--help']);
    expect(train.code).toBe(0);
    expect(train.stdout).toMatch(/^transfuse flow train/);
    for (const flag of ['--checkpoint-every N', '--keep N', '--resume', '--preset realnvp|nice']) expect(train.stdout).toContain(flag);
    const sample = await runCli(['diffusion', 'sample', '-h']);
    expect(sample.stdout).toMatch(/^transfuse diffusion sample/);
    expect(sample.stdout).toContain('--sampler ddim|ddpm');
    expect(sample.stdout).not.toContain('--checkpoint-every');
    expect(train.gpu || global.gpu || sample.gpu).toBe(false);
  });
});

describe('flow train through the CLI', () => {
  const cases = [
    { dataset: 'usps', conditional: false },
    { dataset: 'usps', conditional: true },
    { dataset: 'mnist', conditional: false },
    { dataset: 'mnist', conditional: true },
  ];
  for (const c of cases) {
    test(`${c.conditional ? 'conditional' : 'unconditional'} on ${c.dataset}: trains, saves, samples and evaluates on its own data set`, async () => {
      const out = join(root, `flow-${c.dataset}-${c.conditional}`);
      const r = await runCli(['flow', 'train', '--data', DATA, '--dataset', c.dataset, ...(c.conditional ? ['--conditional'] : []), '--steps', '4', '--n', '100', '--eval-n', '50', '--batch', '16', '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.gpu).toBe(true); // the marker works: a real run does import Dawn
      for (const f of ['model.safetensors', 'training_state.safetensors', 'flow.json', 'run.json', 'log.json', 'samples.png', 'checkpoints/step-000000004/model.safetensors']) {
        expect(existsSync(join(out, f)), f).toBe(true);
      }
      const saved = JSON.parse(readFileSync(join(out, 'log.json'), 'utf8')) as { dataset: string; testBitsPerDim: number; trainBitsPerDim: number; losses: [number, number][] };
      expect(saved.dataset).toBe(c.dataset);
      expect(Number.isFinite(saved.testBitsPerDim) && Number.isFinite(saved.trainBitsPerDim)).toBe(true);
      expect(saved.losses.at(-1)![0]).toBe(4);
      expect(JSON.parse(readFileSync(join(out, 'flow.json'), 'utf8')).condition !== undefined).toBe(c.conditional);

      const png = join(out, 'again.png');
      const s = await runCli(['flow', 'sample', '--checkpoint', out, '--n', '20', '--png', png]);
      expect(s.code, s.stderr).toBe(0);
      expect(existsSync(png)).toBe(true);
      expect(s.stderr.includes('one row per class')).toBe(c.conditional);
      // eval without --dataset scores the data set the flow was trained on, with progress on stderr.
      const e = await runCli(['flow', 'eval', '--checkpoint', out, '--data', DATA, '--n', '30']);
      expect(e.code, e.stderr).toBe(0);
      const line = JSON.parse(e.stdout) as { dataset: string; n: number; bitsPerDim: number };
      expect(line.dataset).toBe(c.dataset);
      expect(line.n).toBe(30);
      expect(Number.isFinite(line.bitsPerDim)).toBe(true);
      expect(e.stderr).toMatch(/eval 1\/1 \[#+\] 100%/);
    });
  }
});

describe('diffusion through the CLI', () => {
  test('train, then sample with progress and --score against the data set recorded in the checkpoint', async () => {
    const out = join(root, 'diffusion-usps');
    const t = await runCli(['diffusion', 'train', '--data', DATA, '--dataset', 'usps', '--conditional', '--steps', '2', '--n', '40', '--batch', '8', '--out', out]);
    expect(t.code, t.stderr).toBe(0);
    const png = join(out, 'grid.png');
    const s = await runCli(['diffusion', 'sample', '--checkpoint', out, '--data', DATA, '--n', '20', '--sampler-steps', '3', '--png', png, '--score']);
    expect(s.code, s.stderr).toBe(0);
    expect(existsSync(png)).toBe(true);
    expect(s.stderr).toMatch(/sample 3\/3 \[#+\] 100%/);
    expect(s.stdout).toMatch(/^W1 to 20 usps test digits \(pixels in \[0, 1\], 16x16\): \d+\.\d{4}\n$/);
  });
});

