/**
 * Modules with PyTorch's naming, so a state dict maps one-to-one onto the same PyTorch module.
 *
 * Parameters and submodules are found by walking a module's own properties in definition order:
 * a property holding a Module is a child named after the property; a property holding a tensor
 * marked with `parameter()` is a parameter. Own parameters come before children's, as in
 * PyTorch's state_dict. Lists of modules go in a ModuleList or Sequential (numeric names); a plain
 * array or object holding modules or parameters is refused, because it would be silently skipped.
 */
import { keep } from '../scope.js';
import { runtime } from '../runtime/current.js';
import { fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import type { NamedArray } from '../io/safetensors.js';
import { copyInto } from '../ops/layout.js';

const parameters = new WeakSet<Tensor>();

/**
 * Marks a float32 leaf tensor as a trainable parameter (requiresGrad = true) and takes it out of
 * any open `tidy` scope, so building a module inside tidy does not dispose its weights.
 */
export function parameter(t: Tensor): Tensor {
  if (!(t instanceof Tensor)) throw new Error(`parameter: expected a Tensor, got ${typeof t}`);
  if (t.dtype !== 'float32') throw new Error(`parameter: parameters must be float32, got ${t.dtype} of shape ${fmt(t.shape)}`);
  if (t.gradFn) throw new Error(`parameter: the tensor of shape ${fmt(t.shape)} was computed from other tensors; pass a leaf (use detach())`);
  t.requiresGrad = true;
  parameters.add(t);
  return keep(t);
}

export function isParameter(v: unknown): v is Tensor {
  return v instanceof Tensor && parameters.has(v);
}

/** A state dict entry: a tensor, or an array as loadSafetensors returns it (dtype F32). */
export type StateEntry = Tensor | NamedArray;
export type StateDictInput = Map<string, StateEntry> | Record<string, StateEntry>;

export interface LoadResult {
  /** Parameters the dict lacked (non-strict loads only; strict loads throw). */
  missingKeys: string[];
  /** Dict entries no parameter has (non-strict loads only). */
  unexpectedKeys: string[];
}

export abstract class Module {
  /** False after eval(): Dropout and similar layers change behaviour. */
  training = true;

  /** Own parameters by property name (null properties, such as an absent bias, are skipped). */
  namedOwnParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [key, value] of Object.entries(this)) {
      if (isParameter(value)) out.push([key, value]);
      else checkNotHidden(this, key, value);
    }
    return out;
  }

  /** Direct submodules by property name. */
  namedChildren(): [string, Module][] {
    return Object.entries(this).filter((e): e is [string, Module] => e[1] instanceof Module);
  }

  /** This module (name '') and every descendant, depth first, with dotted names. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.namedChildren()) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /** Every parameter with its dotted name (`down.0.resnets.1.conv1.weight`); shared ones once. */
  namedParameters(): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, p] of m.namedOwnParameters()) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([prefix ? `${prefix}.${name}` : name, p]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Parameters that currently require grad (what an optimizer should be given). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /**
   * Name → parameter tensor, in PyTorch's state_dict order. The tensors are the live parameters
   * (not copies): read them, do not dispose them.
   */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }

  /**
   * Copies values into the parameters in place (tensor identities, and so optimizer state keyed
   * by them, survive). Strict (default): missing, unexpected and mis-shaped keys are all listed in
   * one error and nothing is written. Non-strict: missing and unexpected keys are reported in the
   * result, mis-shaped ones still throw, as in PyTorch.
   */
  loadStateDict(dict: StateDictInput, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const entries = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const params = this.stateDict();
    const missing = [...params.keys()].filter((k) => !entries.has(k));
    const unexpected = [...entries.keys()].filter((k) => !params.has(k));
    const misshaped: string[] = [];
    for (const [name, p] of params) {
      const e = entries.get(name);
      if (!e) continue;
      const problem = entryProblem(e, p);
      if (problem) misshaped.push(`${name}: ${problem}`);
    }
    const problems: string[] = [];
    if (misshaped.length) problems.push(`mis-shaped keys:\n    ${misshaped.join('\n    ')}`);
    if (strict && missing.length) problems.push(`missing keys: ${missing.join(', ')}`);
    if (strict && unexpected.length) problems.push(`unexpected keys: ${unexpected.join(', ')}`);
    if (problems.length) {
      throw new Error(`loadStateDict into ${this.constructor.name}: nothing was loaded because of\n  ${problems.join('\n  ')}`);
    }
    for (const [name, p] of params) {
      const e = entries.get(name);
      if (!e) continue;
      if (e instanceof Tensor) copyInto(p, e, 'loadStateDict');
      else runtime().upload(p.storageFor('loadStateDict'), e.data);
    }
    return { missingKeys: missing, unexpectedKeys: unexpected };
  }

  /** Sets the training flag on this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Sets requiresGrad on every parameter. Frozen parameters (false) get no gradient, so backward
   * skips them and optimizers neither update them nor allocate state for them.
   */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) {
      p.requiresGrad = flag;
      if (!flag) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
    return this;
  }

  freeze(): this {
    return this.requiresGrad_(false);
  }

  unfreeze(): this {
    return this.requiresGrad_(true);
  }

  /** Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees every parameter (and its gradient). The module is unusable afterwards. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }

  /** Number of scalar parameters. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }
}

/** Modules whose forward maps one tensor to one tensor (what Sequential chains). */
export abstract class Layer extends Module {
  abstract forward(x: Tensor): Tensor;
}

function checkNotHidden(m: Module, key: string, value: unknown): void {
  const items = Array.isArray(value) ? value : value && Object.getPrototypeOf(value) === Object.prototype ? Object.values(value) : [];
  if (items.some((v) => v instanceof Module || isParameter(v))) {
    throw new Error(
      `${m.constructor.name}.${key}: modules or parameters inside a plain array or object are not registered; ` +
        `use a ModuleList or Sequential (parameters: one property each)`,
    );
  }
}

function entryProblem(e: StateEntry, p: Tensor): string | null {
  const shape = [...e.shape];
  if (e instanceof Tensor) {
    if (e.disposed) return 'the given tensor was disposed';
    if (e.dtype !== 'float32') return `dtype ${e.dtype}, expected float32`;
  } else if (e.dtype !== 'F32') {
    return `dtype ${e.dtype}, expected F32`;
  }
  if (shape.join() !== p.shape.join()) return `shape ${fmt(shape)} in the dict, ${fmt(p.shape)} in the module`;
  if (!(e instanceof Tensor) && e.data.length !== p.size) return `${e.data.length} values for shape ${fmt(shape)}`;
  return null;
}

/** Chains layers: Sequential(a, b, c).forward(x) = c(b(a(x))); children are named 0, 1, 2, ... */
export class Sequential extends Layer {
  constructor(...layers: Layer[]) {
    super();
    layers.forEach((l, i) => {
      if (!(l instanceof Module)) throw new Error(`Sequential: item ${i} is not a Module`);
      (this as unknown as Record<string, Layer>)[String(i)] = l;
    });
  }

  get length(): number {
    return this.namedChildren().length;
  }

  at(i: number): Layer {
    const m = (this as unknown as Record<string, Layer>)[String(i)];
    if (!m) throw new Error(`Sequential.at: index ${i} out of range (length ${this.length})`);
    return m;
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const [, m] of this.namedChildren()) {
      const next = (m as Layer).forward(h);
      // Intermediates are not needed by backward (it saves its own handles).
      if (h !== x && h !== next) h.dispose();
      h = next;
    }
    return h;
  }
}

/** A list of modules with numeric names (0, 1, ...), as torch.nn.ModuleList. */
export class ModuleList<M extends Module = Module> extends Module {
  constructor(modules: readonly M[] = []) {
    super();
    for (const m of modules) this.push(m);
  }

  get length(): number {
    return this.namedChildren().length;
  }

  push(m: M): this {
    if (!(m instanceof Module)) throw new Error(`ModuleList.push: expected a Module, got ${typeof m}`);
    (this as unknown as Record<string, M>)[String(this.length)] = m;
    return this;
  }

  at(i: number): M {
    const m = (this as unknown as Record<string, M>)[String(i)];
    if (!m) throw new Error(`ModuleList.at: index ${i} out of range (length ${this.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return (this.namedChildren().map(([, m]) => m) as M[])[Symbol.iterator]();
  }
}
