/**
 * The optimizer base: parameter groups, per-parameter state created on the first update, and a
 * state dict for exact resume. Each concrete optimizer updates one parameter with one fused kernel
 * dispatch (packages/kernels/src/optim.ts), in place; parameters that are frozen
 * (requiresGrad = false) or have no gradient are skipped and get no state.
 */
import { noGrad } from '../autograd/tape.js';
import { keep } from '../scope.js';
import { runtime } from '../runtime/current.js';
import { fmt } from '../shape.js';
import { checkOptionKeys } from '../options.js';
import { Tensor } from '../tensor.js';
import { zeros } from '../ops/index.js';
import { empty, run1d } from '../ops/util.js';
import type { Kernel, Params } from '@transfuse/kernels';
import { copyInto } from '../ops/layout.js';
import type { StateEntry } from '../nn/module.js';

/** Multiplies the loss before backward; optimizers divide gradients by `scale` inside their kernel. */
export interface LossScaler {
  readonly scale: number;
}

export type OptionValue = number | boolean;

/** A group of parameters with its own options (unset options take the optimizer's defaults). */
export type ParamGroupInput<O> = { params: readonly Tensor[] } & Partial<O>;

export interface ParamGroup<O> {
  params: Tensor[];
  options: O;
  /** The learning rate the group was created with; `setLrFactor` scales it. */
  baseLr: number;
}

export interface ParamState {
  /** Updates applied to this parameter. */
  step: number;
  /** Named state tensors (PyTorch's names: exp_avg, exp_avg_sq, momentum_buffer). */
  buffers: Map<string, Tensor>;
}

export interface OptimizerStateDict {
  kind: string;
  paramGroups: { options: Record<string, OptionValue>; baseLr: number; params: number[] }[];
  /** By parameter index (groups' parameters numbered in order, as PyTorch). */
  state: Map<number, { step: number; buffers: Map<string, StateEntry> }>;
}

export interface BaseOptions {
  lr: number;
}

export abstract class Optimizer<O extends BaseOptions> {
  readonly paramGroups: ParamGroup<O>[];
  /** Set to divide gradients by `lossScaler.scale` in the update kernels (f16 loss scaling). */
  lossScaler: LossScaler | null = null;
  protected readonly state = new Map<Tensor, ParamState>();
  /** The state buffers kept for a parameter updated with these options. */
  protected abstract bufferNames(options: O): readonly string[];

  constructor(
    /** 'SGD', 'Adam', 'AdamW': names the optimizer in errors and state dicts. */
    readonly kind: string,
    params: readonly Tensor[] | readonly ParamGroupInput<O>[],
    defaults: O,
  ) {
    const groups =
      params.length > 0 && params[0] instanceof Tensor
        ? [{ params } as unknown as ParamGroupInput<O>]
        : [...(params as ParamGroupInput<O>[])];
    if (groups.length === 0 || groups.every((g) => g.params.length === 0)) {
      throw new Error(`${kind}: got an empty parameter list (a fully frozen model has no trainableParameters())`);
    }
    const seen = new Set<Tensor>();
    this.paramGroups = groups.map((g, gi) => {
      const { params: ps, ...overrides } = g;
      checkOptionKeys(`${kind}: group ${gi}`, overrides, Object.keys(defaults));
      const options = { ...defaults, ...overrides } as O;
      this.validate(options, `group ${gi}`);
      ps.forEach((p, i) => {
        if (!(p instanceof Tensor)) throw new Error(`${kind}: group ${gi} item ${i} is not a Tensor`);
        if (p.dtype !== 'float32' || p.gradFn) {
          throw new Error(`${kind}: group ${gi} item ${i} (${p.dtype} ${fmt(p.shape)}) must be a float32 leaf tensor`);
        }
        if (seen.has(p)) throw new Error(`${kind}: parameter ${fmt(p.shape)} appears more than once (group ${gi} item ${i})`);
        seen.add(p);
      });
      return { params: [...ps], options, baseLr: options.lr };
    });
  }

  /** Checks option values; throws naming the optimizer, `where` and the bad option. */
  protected abstract validate(options: O, where: string): void;

  /** Records the update of `p` with its gradient `g` (one kernel dispatch). */
  protected abstract update(p: Tensor, g: Tensor, state: ParamState, options: O, gradScale: number): void;

  /** All parameters, in index order. */
  params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Sets every group's learning rate. */
  set lr(lr: number) {
    for (const g of this.paramGroups) g.options.lr = lr;
    this.paramGroups.forEach((g, i) => this.validate(g.options, `group ${i}`));
  }

  /** The first group's learning rate. */
  get lr(): number {
    return this.paramGroups[0]?.options.lr ?? 0;
  }

  /** lr = baseLr · factor in every group (apply an LrSchedule's value before each step). */
  setLrFactor(factor: number): void {
    if (!(factor >= 0) || !Number.isFinite(factor)) throw new Error(`${this.kind}.setLrFactor: factor must be finite and >= 0, got ${factor}`);
    for (const g of this.paramGroups) g.options.lr = g.baseLr * factor;
  }

  /** Applies one update to every trainable parameter that has a gradient. */
  step(): void {
    const scale = this.lossScaler?.scale ?? 1;
    if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`${this.kind}.step: loss scale must be finite and > 0, got ${scale}`);
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          if (!p.requiresGrad || !p.grad) continue;
          if (p.grad.shape.join() !== p.shape.join()) {
            throw new Error(`${this.kind}.step: gradient ${fmt(p.grad.shape)} does not match its parameter ${fmt(p.shape)}`);
          }
          let st = this.state.get(p);
          if (!st) this.state.set(p, (st = { step: 0, buffers: new Map() }));
          st.step++;
          this.update(p, p.grad, st, group.options, 1 / scale);
        }
      }
    });
  }

  /** Drops the gradients of all parameters (set to null, as PyTorch's default). */
  zeroGrad(): void {
    for (const p of this.params()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Runs a kernel over a parameter's n elements, one vec4 per invocation. */
  protected runUpdateKernel(k: Kernel, p: Tensor, inputs: Tensor[], outputs: Tensor[], params: Params): void {
    const n4 = Math.ceil(p.size / 4);
    if (n4 > 0) run1d(k, `${this.kind}.step`, n4, inputs, outputs, { ...params, n4 });
  }

  /**
   * The state buffer `name` of `p`, created on first use: zero-filled, or 'empty' when the
   * kernel's first step writes it without reading. Kept out of tidy scopes: it lives with the
   * optimizer.
   */
  protected buffer(state: ParamState, name: string, p: Tensor, init: 'zeros' | 'empty'): Tensor {
    let b = state.buffers.get(name);
    if (!b) {
      b = keep(init === 'zeros' ? zeros(p.shape) : empty(p.shape, 'float32', `${this.kind}.step`));
      state.buffers.set(name, b);
    }
    return b;
  }

  /**
   * Hyperparameters, parameter indices and per-parameter state. The tensors are the live state
   * buffers: read (or save) them, do not dispose them.
   */
  stateDict(): OptimizerStateDict {
    const index = new Map(this.params().map((p, i) => [p, i]));
    const state = new Map<number, { step: number; buffers: Map<string, StateEntry> }>();
    for (const [p, st] of this.state) state.set(index.get(p)!, { step: st.step, buffers: new Map(st.buffers) });
    let at = 0;
    return {
      kind: this.kind,
      paramGroups: this.paramGroups.map((g) => ({
        options: { ...(g.options as unknown as Record<string, OptionValue>) },
        baseLr: g.baseLr,
        params: g.params.map(() => at++),
      })),
      state: new Map([...state].sort((a, b) => a[0] - b[0])),
    };
  }

  /**
   * Restores hyperparameters and state (copied, so the source may be disposed afterwards). The
   * groups must have the same sizes and the buffers the parameters' shapes; everything is checked
   * before anything changes.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const where = `${this.kind}.loadStateDict`;
    if (sd.kind !== this.kind) throw new Error(`${where}: the state dict is from ${sd.kind}, not ${this.kind}`);
    const sizes = (gs: { params: readonly unknown[] }[]) => gs.map((g) => g.params.length).join(', ');
    if (sd.paramGroups.length !== this.paramGroups.length || sizes(sd.paramGroups) !== sizes(this.paramGroups)) {
      throw new Error(`${where}: saved groups hold [${sizes(sd.paramGroups)}] parameters, this optimizer's [${sizes(this.paramGroups)}]`);
    }
    const params = this.params();
    const groupOf = this.paramGroups.flatMap((g, gi) => g.params.map(() => gi));
    const problems: string[] = [];
    sd.paramGroups.forEach((g, i) => {
      const merged = { ...this.paramGroups[i].options, ...g.options } as O;
      try {
        this.validate(merged, `group ${i}`);
      } catch (e) {
        problems.push((e as Error).message);
      }
    });
    for (const [i, st] of sd.state) {
      const p = params[i];
      if (!p) {
        problems.push(`state for parameter ${i}, but there are ${params.length}`);
        continue;
      }
      if (!Number.isSafeInteger(st.step) || st.step < 0) problems.push(`parameter ${i}: step ${st.step} is not a count`);
      const names = [...st.buffers.keys()].sort().join(', ');
      const group = sd.paramGroups[groupOf[i]];
      const expected = [...this.bufferNames({ ...this.paramGroups[groupOf[i]].options, ...group.options } as O)].sort().join(', ');
      if (names !== expected) problems.push(`parameter ${i}: buffers [${names}], expected [${expected}]`);
      for (const [name, b] of st.buffers) {
        const dtype = b instanceof Tensor ? b.dtype : b.dtype;
        if (dtype !== 'float32' && dtype !== 'F32') problems.push(`parameter ${i} ${name}: dtype ${dtype}, expected float32`);
        if (b.shape.join() !== p.shape.join()) problems.push(`parameter ${i} ${name}: shape ${fmt(b.shape)}, parameter ${fmt(p.shape)}`);
        else if (!(b instanceof Tensor) && b.data.length !== p.size) problems.push(`parameter ${i} ${name}: ${b.data.length} values`);
      }
    }
    if (problems.length) throw new Error(`${where}: nothing was loaded because of\n  ${problems.join('\n  ')}`);

    sd.paramGroups.forEach((g, i) => {
      Object.assign(this.paramGroups[i].options, g.options);
      this.paramGroups[i].baseLr = g.baseLr;
    });
    this.disposeState();
    for (const [i, st] of sd.state) {
      const p = params[i];
      const buffers = new Map<string, Tensor>();
      for (const [name, b] of st.buffers) {
        const t = keep(empty(p.shape, 'float32', where));
        if (b instanceof Tensor) copyInto(t, b, where);
        else runtime().upload(t.storageFor(where), b.data);
        buffers.set(name, t);
      }
      this.state.set(p, { step: st.step, buffers });
    }
  }

  /** The state of one parameter, or undefined before its first update. */
  stateOf(p: Tensor): ParamState | undefined {
    return this.state.get(p);
  }

  private disposeState(): void {
    for (const st of this.state.values()) for (const b of st.buffers.values()) b.dispose();
    this.state.clear();
  }

  /** Frees the optimizer state (the parameters are untouched). */
  dispose(): void {
    this.disposeState();
  }
}

export function checkNumber(kind: string, where: string, name: string, v: unknown, ok: (x: number) => boolean, rule: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`${kind}: ${where}: ${name} must be ${rule}, got ${String(v)}`);
}

/** Checks an optimizer's options object against its known keys (PyTorch's `betas` gets a hint). */
export function checkOptimizerKeys(kind: string, opts: object, known: readonly string[]): void {
  if (opts && 'betas' in opts) throw new Error(`${kind}: unknown option 'betas' (known: ${known.join(', ')}); PyTorch's betas=(b1, b2) is { beta1: b1, beta2: b2 } here`);
  checkOptionKeys(kind, opts, known);
}
