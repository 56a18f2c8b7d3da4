/** torch.optim.SGD: momentum, dampening, Nesterov momentum and L2 weight decay. */
import { sgdKernel } from '@transfuse/kernels';
import type { Tensor } from '../tensor.js';
import { checkNumber, Optimizer, type ParamGroupInput, type ParamState } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  protected bufferNames(o: SGDOptions): readonly string[] {
    return o.momentum !== 0 ? ['momentum_buffer'] : [];
  }

  constructor(params: readonly Tensor[] | readonly ParamGroupInput<SGDOptions>[], opts: Partial<SGDOptions> & { lr: number }) {
    super('SGD', params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...opts });
  }

  protected validate(o: SGDOptions, where: string): void {
    checkNumber('SGD', where, 'lr', o.lr, (x) => x >= 0, '>= 0');
    checkNumber('SGD', where, 'momentum', o.momentum, (x) => x >= 0, '>= 0');
    checkNumber('SGD', where, 'dampening', o.dampening, () => true, 'a finite number');
    checkNumber('SGD', where, 'weightDecay', o.weightDecay, (x) => x >= 0, '>= 0');
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new Error(`SGD: ${where}: Nesterov momentum needs momentum > 0 and dampening 0, got momentum ${o.momentum}, dampening ${o.dampening}`);
    }
  }

  protected update(p: Tensor, g: Tensor, state: ParamState, o: SGDOptions, gradScale: number): void {
    const common = { lr: o.lr, weightDecay: o.weightDecay, gradScale, momentum: o.momentum, keep: 1 - o.dampening };
    if (o.momentum === 0) {
      this.runUpdateKernel(sgdKernel(false), p, [g], [p], { ...common, nesterov: 0, first: 0 });
      return;
    }
    // PyTorch starts the buffer as a copy of the first step's direction (no dampening).
    const first = !state.buffers.has('momentum_buffer');
    const buf = this.buffer(state, 'momentum_buffer', p, 'empty');
    this.runUpdateKernel(sgdKernel(true), p, [g], [p, buf], { ...common, nesterov: o.nesterov ? 1 : 0, first: first ? 1 : 0 });
  }
}
