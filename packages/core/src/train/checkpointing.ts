/**
 * What the trainers need of checkpointing, without the file system: the options they take, the
 * state they save, and a factory that the Node entry fills in (train/checkpoint.ts writes the
 * numbered folders). In a browser, asking for checkpoints is an error that says why.
 */
import type { CheckpointContents } from './checkpoint.js';

export interface CheckpointingOptions {
  /** Folder of the numbered checkpoints (step-000000500/ ...). */
  dir: string;
  /** Save after every this many steps (default 200), and always after the last one. */
  every?: number;
  /** Keep the newest this many checkpoints (default 3). */
  keep?: number;
  /** Continue from the newest complete checkpoint in `dir` (start at step 0 if there is none). */
  resume?: boolean;
  /** On SIGINT/SIGTERM save after the current step and stop; a second signal exits at once (default true). */
  signals?: boolean;
  /** When it aborts, save after the current step and stop, as on SIGINT (a caller's own stop, e.g. a queue worker's). */
  abort?: AbortSignal;
  /** Told where each checkpoint went (e.g. a log line). */
  onSave?: (dir: string, step: number) => void;
}

/** What a trainer saves beside the weights: its settings (checked on resume) and its loop state. */
export interface TrainerState {
  trainer: string;
  /** Settings that must match for a resume to continue the same run (steps, batch size, seed...). */
  settings: Record<string, unknown>;
  /** Loop state: RNG states, losses so far; the data order follows from the step. */
  loop: Record<string, unknown>;
}

/**
 * A trainer's checkpointing: `resume()` restores the newest complete checkpoint, `afterStep` saves
 * when due and returns true when a signal asked the trainer to stop.
 */
export interface TrainingCheckpointer {
  resume(state: Omit<TrainerState, 'loop'>): { step: number; loop: Record<string, unknown> } | null;
  readonly stopRequested: boolean;
  afterStep(step: number, total: number, state: () => TrainerState): Promise<boolean>;
  dispose(): void;
}

export type CheckpointerFactory = (
  trainer: string,
  options: CheckpointingOptions,
  contents: Omit<CheckpointContents, 'step' | 'extra'>,
) => TrainingCheckpointer;

let factory: CheckpointerFactory | undefined;

/** Called by the Node entry, which can write folders. */
export function setCheckpointerFactory(f: CheckpointerFactory): void {
  factory = f;
}

export function trainingCheckpoints(
  trainer: string,
  options: CheckpointingOptions,
  contents: Omit<CheckpointContents, 'step' | 'extra'>,
): TrainingCheckpointer {
  if (!factory) {
    throw new Error(
      `${trainer}: the checkpoint option writes folders and needs Node's file system; in a browser, train without it ` +
        'and save the weights with encodeSafetensors',
    );
  }
  return factory(trainer, options, contents);
}
