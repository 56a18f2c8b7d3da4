export { Optimizer, type BaseOptions, type LossScaler, type ParamGroup, type ParamGroupInput, type ParamState, type OptimizerStateDict, type OptionValue } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { clipGradNorm } from './clip.js';
export { constantSchedule, linearWarmup, cosineWithWarmup, type LrSchedule } from './schedule.js';
export { EMA, emaWarmupDecay, type EmaDecay } from './ema.js';
export { BestWeights, type BestWeightsState } from './best.js';
