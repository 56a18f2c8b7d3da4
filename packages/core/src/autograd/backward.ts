/**
 * The backward pass: walks the GradNodes behind a tensor once, in reverse topological order, and
 * accumulates into the leaves' `.grad`.
 */
import { noGrad, type GradNode } from './tape.js';
import { add } from '../ops/elementwise.js';
import { onesLike } from '../ops/creation.js';
import { keep, tidy } from '../scope.js';
import type { Tensor } from '../tensor.js';

export interface BackwardOptions {
  /** Gradient of the output; default 1 for a single-element output. */
  grad?: Tensor;
  /** Keep saved tensors so backward can run through this graph again. */
  retainGraph?: boolean;
}

/** Back-propagates from `root` into the `.grad` of the leaves that require grad. */
export function runBackward(root: Tensor, opts: BackwardOptions): void {
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
      const sum = keep(add(leaf.grad, g));
      leaf.grad.dispose();
      g.dispose();
      leaf.grad = sum;
    } else {
      leaf.grad = keep(g);
    }
  };
  noGrad(() =>
    tidy(() => {
      const seed = opts.grad ? opts.grad.detach() : onesLike(root);
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
              grads.set(edge.node, add(prev, gi));
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
