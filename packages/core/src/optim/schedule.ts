/**
 * Learning-rate schedules as pure functions of the step, returning the factor that multiplies the
 * base learning rate (Hugging Face's LambdaLR convention; use `optimizer.setLrFactor(f(step))`
 * before update `step`, counting from 0).
 */
import { checkOptionKeys } from '../options.js';

export type LrSchedule = (step: number) => number;

function nonNegativeInt(name: string, what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name}: ${what} must be a non-negative integer, got ${v}`);
}

/** Always 1. */
export function constantSchedule(): LrSchedule {
  return () => 1;
}

/** step / warmupSteps during the warmup, then 1 (get_constant_schedule_with_warmup). */
export function linearWarmup(warmupSteps: number): LrSchedule {
  nonNegativeInt('linearWarmup', 'warmupSteps', warmupSteps);
  return (step) => (step < warmupSteps ? step / Math.max(1, warmupSteps) : 1);
}

/**
 * Linear warmup, then a cosine from 1 down to `minFactor` at totalSteps (and `minFactor` after):
 * get_cosine_schedule_with_warmup with half a cycle, plus a floor.
 */
export function cosineWithWarmup(warmupSteps: number, totalSteps: number, opts: { minFactor?: number } = {}): LrSchedule {
  checkOptionKeys('cosineWithWarmup', opts, ['minFactor']);
  nonNegativeInt('cosineWithWarmup', 'warmupSteps', warmupSteps);
  nonNegativeInt('cosineWithWarmup', 'totalSteps', totalSteps);
  if (totalSteps < warmupSteps) throw new Error(`cosineWithWarmup: totalSteps ${totalSteps} is shorter than warmupSteps ${warmupSteps}`);
  const floor = opts.minFactor ?? 0;
  if (!(floor >= 0 && floor <= 1)) throw new Error(`cosineWithWarmup: minFactor must be in [0, 1], got ${floor}`);
  return (step) => {
    if (step < warmupSteps) return step / Math.max(1, warmupSteps);
    const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
