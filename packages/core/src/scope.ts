/**
 * Tensor lifetime scopes: every new tensor belongs to the innermost `tidy`, which disposes it on
 * exit unless it is returned or kept.
 */
import type { Tensor } from './tensor.js';

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

/** The tensors of `scope` found in `value` (itself, or inside arrays and plain objects). */
function collectOwned(value: unknown, scope: Set<Tensor>, out: Set<Tensor>): void {
  if (scope.has(value as Tensor)) out.add(value as Tensor);
  else if (Array.isArray(value)) for (const v of value) collectOwned(v, scope, out);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectOwned(v, scope, out);
  }
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
  collectOwned(result, scope, returned);
  for (const t of scope) {
    if (returned.has(t)) track(t);
    else t.dispose();
  }
  return result;
}
