/**
 * A training progress line: steps done, steps/s, the latest loss and the time left. On a terminal
 * it redraws one line in place (at most 10 times a second); elsewhere (CI logs) it prints a plain
 * line every 10% of the run or every 30 s, whichever comes first, and always at the end.
 * Without a `stream` it writes to process.stderr in Node and to the console in a browser; any
 * `{ write(text) }` object (a callback) can take the lines instead, e.g. to update a page.
 */
import { checkOptionKeys } from '../options.js';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** Printed first on every line. */
  label?: string;
  /** Where to write (default: process.stderr in Node, else the console). */
  stream?: ProgressStream;
  /** Redraw in place; default: whether the stream is a terminal. */
  tty?: boolean;
  /** Non-terminal output: print after each such fraction of the total (default 0.1). */
  everyFraction?: number;
  /** Non-terminal output: print at least this often, in seconds (default 30). */
  everySeconds?: number;
  /** Clock in milliseconds (for tests; default performance.now). */
  now?: () => number;
}

/** Figures shown after the rate, e.g. { loss: 0.43 }. */
export type ProgressInfo = Record<string, number>;

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Plain lines on the console, for hosts without process.stderr (browsers, workers). */
export const consoleStream: ProgressStream = {
  write: (text: string) => {
    const line = text.replace(/\n$/, '');
    if (line !== '') console.log(line);
  },
};

function defaultStream(): ProgressStream {
  const proc = (globalThis as { process?: { stderr?: ProgressStream } }).process;
  return proc?.stderr && typeof proc.stderr.write === 'function' ? proc.stderr : consoleStream;
}

function formatValue(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(3) : v.toPrecision(4);
}

export class ProgressBar {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly start: number;
  private step = 0;
  private info: ProgressInfo = {};
  private lastDraw = -Infinity;
  /** Non-terminal output: the step of the last printed line (-1 before the first). */
  private lastPrintedStep = -1;
  private finished = false;

  constructor(
    readonly total: number,
    private readonly opts: ProgressOptions = {},
  ) {
    checkOptionKeys('ProgressBar', opts, ['label', 'stream', 'tty', 'everyFraction', 'everySeconds', 'now']);
    if (!Number.isInteger(total) || total < 1) throw new Error(`ProgressBar: total must be a positive integer, got ${total}`);
    this.stream = opts.stream ?? defaultStream();
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.now = opts.now ?? (() => performance.now());
    this.start = this.now();
    this.lastDraw = this.tty ? -Infinity : this.start;
  }

  /** Records that `step` steps are done (and the latest figures, which are kept until replaced). */
  update(step: number, info: ProgressInfo = {}): void {
    if (this.finished) return;
    this.step = Math.min(Math.max(0, step), this.total);
    this.info = { ...this.info, ...info };
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw >= 100 || this.step === this.total) this.draw(t, '\r', '\x1b[K');
      return;
    }
    const fraction = this.opts.everyFraction ?? 0.1;
    const printed = Math.max(0, this.lastPrintedStep);
    const nextAt = Math.ceil((Math.floor(printed / (fraction * this.total)) + 1) * fraction * this.total);
    if (this.step >= nextAt || t - this.lastDraw >= (this.opts.everySeconds ?? 30) * 1000) {
      this.lastPrintedStep = this.step;
      this.draw(t, '', '\n');
    }
  }

  /** One more step done. */
  tick(info: ProgressInfo = {}): void {
    this.update(this.step + 1, info);
  }

  /** Prints the final line (ending a terminal's line); later updates are ignored. */
  done(info: ProgressInfo = {}): void {
    if (this.finished) return;
    this.info = { ...this.info, ...info };
    const t = this.now();
    if (this.tty) this.draw(t, '\r', '\x1b[K\n');
    else if (this.lastPrintedStep !== this.step || Object.keys(info).length > 0) this.draw(t, '', '\n');
    this.finished = true;
  }

  /** The status line, without control characters. */
  line(at = this.now()): string {
    const elapsed = (at - this.start) / 1000;
    const rate = elapsed > 0 ? this.step / elapsed : 0;
    const pct = Math.floor((100 * this.step) / this.total);
    const width = 20;
    const filled = Math.floor((width * this.step) / this.total);
    const parts = [
      `${this.opts.label ? `${this.opts.label} ` : ''}${this.step}/${this.total} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(pct).padStart(3)}%`,
      `${rate.toFixed(2)} steps/s`,
      ...Object.entries(this.info).map(([k, v]) => `${k} ${formatValue(v)}`),
      this.step >= this.total ? `took ${formatDuration(elapsed)}` : `ETA ${rate > 0 ? formatDuration((this.total - this.step) / rate) : '?'}`,
    ];
    return parts.join(' | ');
  }

  private draw(t: number, before: string, after: string): void {
    this.lastDraw = t;
    this.stream.write(`${before}${this.line(t)}${after}`);
  }
}
