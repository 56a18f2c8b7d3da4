import { runtime } from '../runtime/current.js';
import type { Tensor } from '../tensor.js';
import { ProgressBar } from './progress.js';
import { checkOptionKeys } from '../options.js';

export interface LossLogOptions {
  /** Steps the loop will run (the progress bar's total). */
  steps: number;
  /** Read the loss back every this many steps and at the last one (default 50); others stay on the GPU. */
  logEvery?: number;
  /** Progress bar label; null for no bar. */
  label: string | null;
  /** The figure's name on the bar (default 'loss'). */
  name?: string;
  /** What the error for a non-finite loss suggests, e.g. 'lower the learning rate'. */
  hint?: string;
  onLog?: (step: number, loss: number) => void;
}

/**
 * What every training loop does after its step: reads the loss back now and then (a readback
 * every step would stall the GPU queue), fails at once on a non-finite loss instead of training
 * on NaNs, feeds the progress bar and `onLog`, and keeps the loop from running far ahead of the GPU.
 */
export class LossLog {
  /** (step, loss) pairs, read every logEvery steps. */
  readonly losses: [number, number][] = [];
  private readonly bar: ProgressBar | null;
  private readonly logEvery: number;

  constructor(
    private readonly trainer: string,
    private readonly o: LossLogOptions,
  ) {
    checkOptionKeys(`${trainer} (LossLog)`, o, ['steps', 'logEvery', 'label', 'name', 'hint', 'onLog']);
    this.logEvery = o.logEvery ?? 50;
    if (!(this.logEvery >= 1)) throw new Error(`${trainer}: logEvery must be at least 1, got ${this.logEvery}`);
    this.bar = o.label === null ? null : new ProgressBar(o.steps, { label: o.label });
  }

  /** Records that step `step` (1-based) is done with this loss, which it disposes; `read` forces a readback. */
  async record(step: number, loss: Tensor, read = false): Promise<void> {
    try {
      if (read || step % this.logEvery === 0 || step === this.o.steps) {
        const v = await loss.item();
        if (!Number.isFinite(v)) throw new Error(`${this.trainer}: the loss became ${v} at step ${step}${this.o.hint ? `; ${this.o.hint}` : ''}`);
        this.losses.push([step, v]);
        this.o.onLog?.(step, v);
        this.bar?.update(step, { [this.o.name ?? 'loss']: v });
      } else {
        this.bar?.update(step);
      }
    } finally {
      loss.dispose();
    }
    await runtime().keepPace();
  }

  /** Ends the progress line. */
  done(): void {
    this.bar?.done();
  }
}
