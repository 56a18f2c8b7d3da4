/**
 * The define-by-run tape: grad mode and the GradNode each recorded op leaves on its output.
 *
 * Each op whose inputs need gradients records a GradNode on its output: the backward closure and
 * the tensors it saved (shared handles on the same GPU storage, so the user may dispose the
 * originals). backward.ts walks the nodes once in reverse topological order. Nodes are reference counted (by their output tensor and by the nodes
 * that consume it), so a graph that is never back-propagated frees its saved buffers as soon as
 * its tensors are disposed.
 */
import type { Tensor } from '../tensor.js';

type Edge = { leaf: Tensor; node: null } | { leaf: null; node: GradNode } | null;
/** Gradients of the inputs from the output's; `needs[i]` says whether input i wants one (else return null). */
export type BackwardFn = (grad: Tensor, saved: readonly Tensor[], needs: readonly boolean[]) => readonly (Tensor | null)[];

export class GradNode {
  refs = 1;
  private saved: Tensor[] | null;
  constructor(
    readonly op: string,
    readonly edges: readonly Edge[],
    readonly inputShapes: readonly (readonly number[])[],
    saved: Tensor[],
    readonly backwardFn: BackwardFn,
  ) {
    this.saved = saved;
  }

  get freed(): boolean {
    return this.saved === null;
  }

  savedTensors(): readonly Tensor[] {
    if (!this.saved) {
      throw new Error(
        `backward through '${this.op}' a second time: its saved tensors were freed by the first backward(); ` +
          `pass { retainGraph: true } to the first call to back-propagate twice`,
      );
    }
    return this.saved;
  }

  freeSaved(): void {
    if (!this.saved) return;
    for (const t of this.saved) t.dispose();
    this.saved = null;
  }

  release(): void {
    if (--this.refs > 0) return;
    this.freeSaved();
    for (const e of this.edges) e?.node?.release();
  }
}

// ---- grad mode ----

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording gradients (inference, sampling, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Attaches a backward rule to `out` if any input needs a gradient. `save` lists tensors the rule
 * reads; they are kept alive (as shared handles) until backward or until the graph is dropped.
 */
export function record(op: string, inputs: readonly Tensor[], out: Tensor, backwardFn: BackwardFn, save: readonly Tensor[] = []): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  const edges: Edge[] = inputs.map((t) => {
    if (!t.requiresGrad) return null;
    if (t.gradFn) {
      t.gradFn.refs++;
      return { leaf: null, node: t.gradFn };
    }
    return { leaf: t, node: null };
  });
  out.gradFn = new GradNode(
    op,
    edges,
    inputs.map((t) => t.shape),
    save.map((t) => t.share()),
    backwardFn,
  );
  return out;
}
