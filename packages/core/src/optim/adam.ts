/** torch.optim.Adam (L2 weight decay folded into the gradient) and AdamW (decoupled decay). */
import { adamKernel } from '@transfuse/kernels';
import type { Tensor } from '../tensor.js';
import { checkNumber, Optimizer, type ParamGroupInput, type ParamState } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

type Params = readonly Tensor[] | readonly ParamGroupInput<AdamOptions>[];

abstract class AdamBase extends Optimizer<AdamOptions> {
  protected bufferNames(): readonly string[] {
    return ['exp_avg', 'exp_avg_sq'];
  }

  protected constructor(
    kind: 'Adam' | 'AdamW',
    private readonly decoupled: boolean,
    params: Params,
    defaults: AdamOptions,
  ) {
    super(kind, params, defaults);
  }

  protected validate(o: AdamOptions, where: string): void {
    checkNumber(this.kind, where, 'lr', o.lr, (x) => x >= 0, '>= 0');
    checkNumber(this.kind, where, 'beta1', o.beta1, (x) => x >= 0 && x < 1, 'in [0, 1)');
    checkNumber(this.kind, where, 'beta2', o.beta2, (x) => x >= 0 && x < 1, 'in [0, 1)');
    checkNumber(this.kind, where, 'eps', o.eps, (x) => x >= 0, '>= 0');
    checkNumber(this.kind, where, 'weightDecay', o.weightDecay, (x) => x >= 0, '>= 0');
  }

  protected update(p: Tensor, g: Tensor, state: ParamState, o: AdamOptions, gradScale: number): void {
    const expAvg = this.buffer(state, 'exp_avg', p, 'zeros');
    const expAvgSq = this.buffer(state, 'exp_avg_sq', p, 'zeros');
    const t = state.step;
    this.runUpdateKernel(adamKernel(), p, [g], [p, expAvg, expAvgSq], {
      oneMinusBeta1: 1 - o.beta1,
      beta2: o.beta2,
      oneMinusBeta2: 1 - o.beta2,
      eps: o.eps,
      weightDecay: o.weightDecay,
      decay: 1 - o.lr * o.weightDecay,
      stepSize: o.lr / (1 - o.beta1 ** t),
      bc2Sqrt: Math.sqrt(1 - o.beta2 ** t),
      gradScale,
      decoupled: this.decoupled ? 1 : 0,
    });
  }
}

/** Adam: defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, weightDecay 0 (an L2 term in the gradient). */
export class Adam extends AdamBase {
  constructor(params: Params, opts: Partial<AdamOptions> = {}) {
    super('Adam', false, params, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...opts });
  }
}

/** AdamW: as Adam but the decay shrinks the weights directly (p *= 1 - lr·weightDecay); default weightDecay 1e-2. */
export class AdamW extends AdamBase {
  constructor(params: Params, opts: Partial<AdamOptions> = {}) {
    super('AdamW', true, params, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, ...opts });
  }
}
