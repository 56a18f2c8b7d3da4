/**
 * Early stopping's memory: the weights with the lowest validation score seen so far. offer() copies
 * the parameters on the GPU when the score improves; restore() writes the best copy back in place,
 * so tensor identities (and optimizer state keyed by them) survive.
 */
import { Tensor } from '../tensor.js';
import { fmt } from '../shape.js';
import { runtime } from '../runtime/current.js';
import { keep } from '../scope.js';
import { cloneOf, copyInto } from '../ops/layout.js';
import { empty } from '../ops/util.js';
import type { StateEntry } from '../nn/module.js';

/** What a checkpoint keeps of early stopping: the scores and the best copies (null before the first offer). */
export interface BestWeightsState<T = Tensor> {
  best: number;
  bestStep: number;
  sinceBest: number;
  copies: T[] | null;
}

export class BestWeights {
  /** The lowest score offered so far (Infinity before the first offer). */
  best = Infinity;
  /** The step at which it was offered (-1 before the first offer). */
  bestStep = -1;
  /** Offers since the last improvement. */
  sinceBest = 0;
  private copies: Tensor[] | null = null;

  /** Tracks these parameters (usually the trainable ones: frozen ones never change). */
  constructor(readonly tracked: readonly Tensor[]) {}

  /** Records `score` at `step`; copies the weights and returns true when it is the lowest yet. */
  offer(score: number, step: number): boolean {
    if (Number.isNaN(score)) throw new Error(`BestWeights.offer: the score at step ${step} is NaN`);
    if (score >= this.best) {
      this.sinceBest++;
      return false;
    }
    this.best = score;
    this.bestStep = step;
    this.sinceBest = 0;
    if (!this.copies) this.copies = this.tracked.map((p) => cloneOf(p, 'BestWeights'));
    else this.tracked.forEach((p, i) => copyInto(this.copies![i], p, 'BestWeights'));
    return true;
  }

  /** Writes the best weights back into the tracked parameters. */
  restore(): void {
    if (!this.copies) throw new Error('BestWeights.restore: no score was offered yet');
    this.tracked.forEach((p, i) => copyInto(p, this.copies![i], 'BestWeights.restore'));
  }

  /** The scores and the best copies (live: do not dispose), in the order of the tracked parameters. */
  stateDict(): BestWeightsState {
    return { best: this.best, bestStep: this.bestStep, sinceBest: this.sinceBest, copies: this.copies ? [...this.copies] : null };
  }

  /** Restores a stateDict() (e.g. from a checkpoint): one copy per tracked parameter, same shapes. */
  loadStateDict(sd: BestWeightsState<StateEntry>): void {
    const op = 'BestWeights.loadStateDict';
    const problems: string[] = [];
    if (!(sd.best === Infinity ? sd.copies === null && sd.bestStep === -1 : Number.isFinite(sd.best) && sd.copies !== null)) {
      problems.push(`best ${sd.best} at step ${sd.bestStep} does not match ${sd.copies ? 'the saved copies' : 'the absence of copies'}`);
    }
    if (!Number.isSafeInteger(sd.sinceBest) || sd.sinceBest < 0) problems.push(`sinceBest ${sd.sinceBest} is not a count`);
    if (sd.copies && sd.copies.length !== this.tracked.length) problems.push(`${sd.copies.length} copies for ${this.tracked.length} tracked parameters`);
    sd.copies?.forEach((e, i) => {
      const p = this.tracked[i];
      if (!p) return;
      if (e.shape.join() !== p.shape.join()) problems.push(`copy ${i}: shape ${fmt(e.shape)}, expected ${fmt(p.shape)}`);
      else if (e instanceof Tensor ? e.dtype !== 'float32' : e.dtype !== 'F32' || e.data.length !== p.size) problems.push(`copy ${i}: not float32 data of ${p.size} values`);
    });
    if (problems.length) throw new Error(`${op}: nothing was loaded because of\n  ${problems.join('\n  ')}`);
    this.dispose();
    this.copies =
      sd.copies?.map((e, i) => {
        const t = keep(empty(this.tracked[i].shape, 'float32', op));
        if (e instanceof Tensor) copyInto(t, e, op);
        else runtime().upload(t.storageFor(op), e.data);
        return t;
      }) ?? null;
    this.best = sd.best;
    this.bestStep = sd.bestStep;
    this.sinceBest = sd.sinceBest;
  }

  dispose(): void {
    for (const c of this.copies ?? []) c.dispose();
    this.copies = null;
  }
}
