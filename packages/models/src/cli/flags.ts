/**
 * Command-line flags from a declarative spec: every subcommand lists its flags with their types
 * and allowed values, and `parseFlags` checks all of them before any work starts (no GPU, no data).
 * A bad invocation is a `UsageError` with one line naming the flag, the value and what is allowed;
 * the CLI prints it and exits with code 2. `--x=-5` and `--x -5` both give --x the value -5.
 */

export type Flag =
  | { type: 'int'; help: string; min?: number; max?: number; oneOf?: readonly number[]; default?: number }
  | { type: 'number'; help: string; min?: number; max?: number; /** min itself is not allowed */ above?: boolean; below?: boolean; default?: number }
  | { type: 'choice'; help: string; values: readonly string[]; default?: string; required?: true }
  | { type: 'bool'; help: string }
  | { type: 'string'; help: string; default?: string; required?: true }
  | { type: 'ints'; help: string; min: number; max: number }
  | { type: 'choices'; help: string; values: readonly string[] };

export type FlagSpec = Record<string, Flag>;

type ValueOf<F extends Flag> = F extends { type: 'int' | 'number' }
  ? F extends { default: number } ? number : number | undefined
  : F extends { type: 'choice' | 'string' }
    ? F extends { default: string } | { required: true } ? string : string | undefined
    : F extends { type: 'bool' }
      ? boolean
      : F extends { type: 'ints' }
        ? number[] | undefined
        : string[] | undefined;

/** The parsed values, plus `given`: the flags that were on the command line (not defaults). */
export type FlagValues<S extends FlagSpec> = { [K in keyof S]: ValueOf<S[K]> } & { given: Set<string> };

/** A bad command line: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

function allowed(f: Flag): string {
  switch (f.type) {
    case 'int':
      if (f.oneOf) return `one of ${f.oneOf.join(', ')}`;
      return f.max === undefined ? `an integer >= ${f.min ?? 0}` : `an integer from ${f.min ?? 0} to ${f.max}`;
    case 'number': {
      const lo = f.min === undefined ? '' : `${f.above ? '>' : '>='} ${f.min}`;
      const hi = f.max === undefined ? '' : `${f.below ? '<' : '<='} ${f.max}`;
      return `a number${lo || hi ? ` ${[lo, hi].filter(Boolean).join(' and ')}` : ''}`;
    }
    case 'choice':
      return `one of ${f.values.join(', ')}`;
    case 'choices':
      return `a comma-separated list of ${f.values.join(', ')}`;
    case 'ints':
      return `a comma-separated list of distinct integers from ${f.min} to ${f.max}`;
    default:
      return 'a value';
  }
}

const INT = /^[+-]?\d+$/;

function parseInteger(cmd: string, name: string, f: { min?: number; max?: number; oneOf?: readonly number[] }, raw: string, what: string): number {
  const x = Number(raw);
  const ok = INT.test(raw.trim()) && Number.isSafeInteger(x) && (f.oneOf ? f.oneOf.includes(x) : x >= (f.min ?? 0) && (f.max === undefined || x <= f.max));
  if (!ok) throw new UsageError(`${cmd}: --${name} must be ${what}, got '${raw}'`);
  return x;
}

function convert(cmd: string, name: string, f: Flag, raw: string): unknown {
  const bad = (): never => {
    throw new UsageError(`${cmd}: --${name} must be ${allowed(f)}, got '${raw}'`);
  };
  switch (f.type) {
    case 'int':
      return parseInteger(cmd, name, f, raw, allowed(f));
    case 'number': {
      const x = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(x)) bad();
      if (f.min !== undefined && (f.above ? x <= f.min : x < f.min)) bad();
      if (f.max !== undefined && (f.below ? x >= f.max : x > f.max)) bad();
      return x;
    }
    case 'choice':
      return f.values.includes(raw) ? raw : bad();
    case 'choices': {
      const items = raw.split(',');
      if (items.some((s) => !f.values.includes(s)) || new Set(items).size !== items.length) bad();
      return items;
    }
    case 'ints': {
      const items = raw.split(',').map((s) => parseInteger(cmd, name, f, s, allowed(f)));
      if (new Set(items).size !== items.length) bad();
      return items;
    }
    case 'string':
      return raw === '' ? bad() : raw;
    default:
      return bad();
  }
}

/**
 * Parses `argv` (the tokens after the command words) against `spec`. Every flag may appear once;
 * a flag that takes a value takes the next token whatever it looks like, so `--steps -5` is a value
 * (and then refused as out of range). Unknown flags and stray words are errors.
 */
export function parseFlags<S extends FlagSpec>(cmd: string, argv: readonly string[], spec: S): FlagValues<S> {
  const out: Record<string, unknown> = {};
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (!token.startsWith('--') || token === '--') throw new UsageError(`${cmd}: unexpected argument '${token}' (flags start with --; see ${cmd} --help)`);
    const eq = token.indexOf('=');
    const name = token.slice(2, eq < 0 ? undefined : eq);
    const f = spec[name];
    if (!f) throw new UsageError(`${cmd}: unknown flag --${name} (known: ${Object.keys(spec).map((k) => `--${k}`).join(' ')})`);
    if (given.has(name)) throw new UsageError(`${cmd}: --${name} is given twice`);
    given.add(name);
    if (f.type === 'bool') {
      if (eq >= 0) throw new UsageError(`${cmd}: --${name} is a switch and takes no value, got '${token.slice(eq + 1)}'`);
      out[name] = true;
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = token.slice(eq + 1);
    else if (i + 1 < argv.length) raw = argv[++i];
    else throw new UsageError(`${cmd}: --${name} needs a value (${allowed(f)})`);
    out[name] = convert(cmd, name, f, raw);
  }
  for (const [name, f] of Object.entries(spec)) {
    if (name in out) continue;
    if ((f.type === 'string' || f.type === 'choice') && f.required) throw new UsageError(`${cmd}: --${name} is required (${f.help})`);
    out[name] = f.type === 'bool' ? false : 'default' in f ? f.default : undefined;
  }
  return { ...out, given } as FlagValues<S>;
}

/** The help text of one subcommand: its synopsis and every flag with what it accepts and its default. */
export function flagsHelp(synopsis: string, spec: FlagSpec): string {
  const rows = Object.entries(spec).map(([name, f]) => {
    const value = f.type === 'bool' ? '' : f.type === 'choice' ? ` ${f.values.join('|')}` : f.type === 'int' && f.oneOf ? ` ${f.oneOf.join('|')}` : ' ' + (f.type === 'ints' || f.type === 'choices' ? 'A,B' : f.type === 'string' ? 'VALUE' : 'N');
    const def = 'default' in f && f.default !== undefined ? ` (default ${f.default})` : '';
    return [`  --${name}${value}`, `${f.help}${def}`];
  });
  const width = 26;
  const line = ([a, b]: string[]) => (a.length < width ? a.padEnd(width) + b : `${a}\n${' '.repeat(width)}${b}`);
  return `${synopsis}\n\n${rows.map(line).join('\n')}\n`;
}

/** Flags every data-reading command takes. */
export const DATA_FLAG = { type: 'string', help: 'folder with mnist/ and usps/ (default: $TRANSFUSE_DATA, else ../shared/data)' } as const satisfies Flag;
export const SEED_FLAG = { type: 'int', min: 0, max: 2 ** 32 - 1, default: 0, help: 'random seed' } as const satisfies Flag;
export const DIGIT_CLASSES_FLAG = { type: 'ints', min: 0, max: 9, help: 'digit classes to keep, e.g. 3,5' } as const satisfies Flag;

/** The checkpointing flags of the training commands. */
export const CHECKPOINT_FLAGS = {
  'checkpoint-every': { type: 'int', min: 1, default: 200, help: 'save a checkpoint into OUT/checkpoints every N steps' },
  keep: { type: 'int', min: 1, default: 3, help: 'keep the newest K checkpoints' },
  resume: { type: 'bool', help: 'continue the run in --out from its newest complete checkpoint' },
} as const satisfies FlagSpec;

/** One subcommand: its help synopsis, its flags, and what it does with their values. */
export interface Command<S extends FlagSpec = FlagSpec> {
  synopsis: string;
  flags: S;
  /** `gpu()` starts the GPU: call it only after everything that can be checked on the CPU is. */
  run(v: FlagValues<S>, ctx: { log: (msg: string) => void; gpu: () => Promise<void>; words: string[] }): Promise<void>;
  /** Positional words after the command (e.g. the experiment name), checked before any work. */
  words?: { name: string; values: readonly string[] };
}

/** A typed Command (the spec's literal types flow into `run`). */
export const command = <const S extends FlagSpec>(c: Command<S>): Command<S> => c;
