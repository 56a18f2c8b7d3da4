/**
 * Early stopping's memory: the weights with the lowest validation score seen so far. offer() copies
 * the parameters on the GPU when the score improves; restore() writes the best copy back in place,
 * so tensor identities (and optimizer state keyed by them) survive.
 */
import type { Tensor } from '../tensor.js';
import { cloneOf, copyInto } from '../ops/layout.js';

export class BestWeights {
  /** The lowest score offered so far (Infinity before the first offer). */
  best = Infinity;
  /** The step at which it was offered (-1 before the first offer). */
  bestStep = -1;
  /** Offers since the last improvement. */
  sinceBest = 0;
  private copies: Tensor[] | null = null;

  /** Tracks `params` (usually the trainable ones: frozen ones never change). */
  constructor(private readonly params: readonly Tensor[]) {}

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
    if (!this.copies) this.copies = this.params.map((p) => cloneOf(p, 'BestWeights'));
    else this.params.forEach((p, i) => copyInto(this.copies![i], p, 'BestWeights'));
    return true;
  }

  /** Writes the best weights back into the tracked parameters. */
  restore(): void {
    if (!this.copies) throw new Error('BestWeights.restore: no score was offered yet');
    this.params.forEach((p, i) => copyInto(p, this.copies![i], 'BestWeights.restore'));
  }

  dispose(): void {
    for (const c of this.copies ?? []) c.dispose();
    this.copies = null;
  }
}
