/**
 * Define-by-run autograd and tensor lifetime scopes.
 *
 * Each op whose inputs need gradients records a GradNode on its output: the backward closure and
 * the tensors it saved (shared handles on the same GPU storage, so the user may dispose the
 * originals). `backward()` walks the nodes once in reverse topological order and accumulates
 * into the leaves' `.grad`. Nodes are reference counted (by their output tensor and by the nodes
 * that consume it), so a graph that is never back-propagated frees its saved buffers as soon as
 * its tensors are disposed.
 */
import type { Tensor } from './tensor.js';

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

// ---- scopes ----

const scopes: Set<Tensor>[] = [];

/** Called by the Tensor constructor: the innermost scope owns every new tensor. */
export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Takes `t` out of every open scope, so `tidy` will not dispose it. Returns `t`. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(value: unknown, out: Set<Tensor>, isTensor: (v: unknown) => v is Tensor): void {
  if (isTensor(value)) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, out, isTensor);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, isTensor);
  }
}

let isTensorFn: (v: unknown) => v is Tensor = (v: unknown): v is Tensor => false;
export function setTensorCheck(fn: (v: unknown) => v is Tensor): void {
  isTensorFn = fn;
}

/**
 * Runs `fn` and disposes every tensor created inside it, except the tensors it returns (in an
 * array or plain object too) and those passed to `keep()`. Returned tensors move to the
 * enclosing scope. `fn` must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new Error('tidy(fn): fn returned a Promise; tidy only scopes synchronous work (await outside it)');
  }
  const returned = new Set<Tensor>();
  collectTensors(result, returned, isTensorFn);
  for (const t of scope) {
    if (returned.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

// ---- backward ----

export interface BackwardOptions {
  /** Gradient of the output; default 1 for a single-element output. */
  grad?: Tensor;
  /** Keep saved tensors so backward can run through this graph again. */
  retainGraph?: boolean;
}

/**
 * Back-propagates from `root`. `ops.ones`/`ops.add` are passed in by tensor.ts to avoid an import cycle.
 */
export function runBackward(
  root: Tensor,
  opts: BackwardOptions,
  helpers: { onesLike: (t: Tensor) => Tensor; add: (a: Tensor, b: Tensor) => Tensor },
): void {
  if (!root.requiresGrad) {
    throw new Error(
      `backward: the tensor of shape [${root.shape.join(', ')}] does not require grad ` +
        `(no input had requiresGrad = true, or it was computed under noGrad)`,
    );
  }
  if (!opts.grad && root.size !== 1) {
    throw new Error(`backward: output of shape [${root.shape.join(', ')}] is not a scalar; pass { grad } of the same shape`);
  }
  if (opts.grad && opts.grad.shape.join() !== root.shape.join()) {
    throw new Error(`backward: grad of shape [${opts.grad.shape.join(', ')}] does not match the output's [${root.shape.join(', ')}]`);
  }
  const accumulateLeaf = (leaf: Tensor, g: Tensor) => {
    if (leaf.disposed) throw new Error(`backward: a leaf tensor of shape [${leaf.shape.join(', ')}] was disposed before backward`);
    if (leaf.grad) {
      const sum = keep(helpers.add(leaf.grad, g));
      leaf.grad.dispose();
      g.dispose();
      leaf.grad = sum;
    } else {
      leaf.grad = keep(g);
    }
  };
  noGrad(() =>
    tidy(() => {
      const seed = opts.grad ? opts.grad.detach() : helpers.onesLike(root);
      if (!root.gradFn) {
        accumulateLeaf(root, seed.detach());
        return;
      }
      // Iterative post-order DFS: a node comes after every node that consumes it.
      const order: GradNode[] = [];
      const seen = new Set<GradNode>();
      const stack: [GradNode, number][] = [[root.gradFn, 0]];
      seen.add(root.gradFn);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const [node, i] = top;
        if (i < node.edges.length) {
          top[1]++;
          const next = node.edges[i]?.node;
          if (next && !seen.has(next)) {
            seen.add(next);
            stack.push([next, 0]);
          }
        } else {
          stack.pop();
          order.push(node);
        }
      }
      const grads = new Map<GradNode, Tensor>([[root.gradFn, seed]]);
      for (let k = order.length - 1; k >= 0; k--) {
        const node = order[k];
        const g = grads.get(node);
        if (!g) continue;
        grads.delete(node);
        // Temporaries of the rule die with its own scope; only the input gradients leave it.
        const inGrads = tidy(() => node.backwardFn(g, node.savedTensors(), node.edges.map((e) => e !== null)));
        node.edges.forEach((edge, i) => {
          const raw = inGrads[i];
          if (!edge || !raw) return;
          if (raw.shape.join() !== node.inputShapes[i].join()) {
            throw new Error(
              `internal: backward of '${node.op}' gave a gradient of shape [${raw.shape.join(', ')}] ` +
                `for input ${i} of shape [${node.inputShapes[i].join(', ')}]`,
            );
          }
          // A rule may return the same tensor for several inputs (add): give each edge its own handle.
          const gi = raw.detach();
          if (edge.leaf) {
            accumulateLeaf(edge.leaf, gi);
          } else {
            const prev = grads.get(edge.node);
            if (prev) {
              grads.set(edge.node, helpers.add(prev, gi));
              prev.dispose();
              gi.dispose();
            } else {
              grads.set(edge.node, gi);
            }
          }
        });
        g.dispose();
        for (const raw of inGrads) raw?.dispose();
        if (!opts.retainGraph) node.freeSaved();
      }
    }),
  );
}
