/**
 * Exponential moving average of a model's trainable weights (diffusers' EMAModel without the
 * extras): shadow ← shadow - (1 - decay)·(shadow - param), one fused dispatch per parameter.
 */
import { emaKernel } from '@transfuse/kernels';
import { runtime } from '../runtime/current.js';
import { fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { run1d } from '../ops/util.js';
import { cloneOf, copyInto } from '../ops/layout.js';
import { checkOptionKeys } from '../options.js';
import type { Module, StateEntry } from '../nn/module.js';

/** A decay, or a function of the number of updates made before this one (0, 1, ...). */
export type EmaDecay = number | ((updates: number) => number);

/** diffusers' default warmup: min(maxDecay, (1 + n) / (10 + n)) after n updates. */
export function emaWarmupDecay(maxDecay = 0.9999): (updates: number) => number {
  return (n) => Math.min(maxDecay, (1 + n) / (10 + n));
}

export class EMA {
  /** Averaged copies of the tracked parameters, by dotted name. */
  readonly shadow = new Map<string, Tensor>();
  /** Updates made so far. */
  updates = 0;
  private readonly tracked: [string, Tensor][];
  private backup: Map<string, Tensor> | null = null;

  /** Tracks the parameters of `model` that require grad now (frozen ones never change). */
  constructor(
    model: Module,
    readonly opts: { decay?: EmaDecay } = {},
  ) {
    checkOptionKeys('EMA', opts, ['decay']);
    this.tracked = model.namedParameters().filter(([, p]) => p.requiresGrad);
    for (const [name, p] of this.tracked) this.shadow.set(name, cloneOf(p, 'EMA'));
  }

  /** The decay the next update will use. */
  currentDecay(): number {
    const d = this.opts.decay ?? 0.9999;
    const v = typeof d === 'number' ? d : d(this.updates);
    if (!(v >= 0 && v <= 1)) throw new Error(`EMA: decay must be in [0, 1], got ${v} after ${this.updates} updates`);
    return v;
  }

  /** Moves the shadow weights toward the tracked parameters' current values. */
  update(): void {
    const oneMinusDecay = 1 - this.currentDecay();
    for (const [name, p] of this.tracked) {
      const s = this.shadow.get(name)!;
      const n4 = Math.ceil(p.size / 4);
      if (n4 > 0) run1d(emaKernel(), 'EMA.update', n4, [p], [s], { n4, oneMinusDecay, pad: 0 });
    }
    this.updates++;
  }

  /** Writes the averaged weights into `model` (same architecture: matched by name). */
  copyTo(model: Module): void {
    const params = this.targets(model, 'EMA.copyTo');
    for (const [name, s] of this.shadow) copyInto(params.get(name)!, s, 'EMA.copyTo');
  }

  /** Saves `model`'s current tracked weights, to put back with restore() (e.g. around sampling). */
  store(model: Module): void {
    const params = this.targets(model, 'EMA.store');
    this.disposeBackup();
    this.backup = new Map([...this.shadow.keys()].map((name) => [name, cloneOf(params.get(name)!, 'EMA.store')]));
  }

  /** Puts back the weights saved by store() and frees the saved copy. */
  restore(model: Module): void {
    if (!this.backup) throw new Error('EMA.restore: nothing stored; call store(model) first');
    const params = this.targets(model, 'EMA.restore');
    for (const [name, b] of this.backup) copyInto(params.get(name)!, b, 'EMA.restore');
    this.disposeBackup();
  }

  /** Runs `fn` with the averaged weights in `model` (to measure or snapshot them), then puts the model's own back, also when `fn` throws. */
  async withAveraged<T>(model: Module, fn: () => Promise<T>): Promise<T> {
    this.store(model);
    this.copyTo(model);
    try {
      return await fn();
    } finally {
      this.restore(model);
    }
  }

  /** The shadow tensors (live: do not dispose) and the update count. */
  stateDict(): { updates: number; shadow: Map<string, Tensor> } {
    return { updates: this.updates, shadow: new Map(this.shadow) };
  }

  /** Restores shadow weights and the update count; every tracked name must be present with its shape. */
  loadStateDict(sd: { updates: number; shadow: Map<string, StateEntry> }): void {
    const problems: string[] = [];
    if (!Number.isSafeInteger(sd.updates) || sd.updates < 0) problems.push(`updates ${sd.updates} is not a count`);
    for (const [name, s] of this.shadow) {
      const e = sd.shadow.get(name);
      if (!e) problems.push(`missing ${name}`);
      else if (e.shape.join() !== s.shape.join()) problems.push(`${name}: shape ${fmt(e.shape)}, expected ${fmt(s.shape)}`);
      else if (e instanceof Tensor ? e.dtype !== 'float32' : e.dtype !== 'F32' || e.data.length !== s.size) problems.push(`${name}: not float32 data of ${s.size} values`);
    }
    for (const name of sd.shadow.keys()) if (!this.shadow.has(name)) problems.push(`unexpected ${name}`);
    if (problems.length) throw new Error(`EMA.loadStateDict: nothing was loaded because of\n  ${problems.join('\n  ')}`);
    for (const [name, s] of this.shadow) {
      const e = sd.shadow.get(name)!;
      if (e instanceof Tensor) copyInto(s, e, 'EMA.loadStateDict');
      else runtime().upload(s.storageFor('EMA.loadStateDict'), e.data);
    }
    this.updates = sd.updates;
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
    this.shadow.clear();
    this.disposeBackup();
  }

  private targets(model: Module, op: string): Map<string, Tensor> {
    const params = new Map(model.namedParameters());
    const missing = [...this.shadow].filter(([name, s]) => params.get(name)?.shape.join() !== s.shape.join()).map(([n]) => n);
    if (missing.length) throw new Error(`${op}: the model lacks (or mis-shapes) the averaged parameters ${missing.join(', ')}`);
    return params;
  }

  private disposeBackup(): void {
    for (const b of this.backup?.values() ?? []) b.dispose();
    this.backup = null;
  }
}
