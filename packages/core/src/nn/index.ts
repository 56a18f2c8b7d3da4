export { Module, Layer, Sequential, ModuleList, parameter, isParameter, type StateEntry, type StateDictInput, type LoadResult } from './module.js';
export {
  Linear,
  Conv2d,
  Upsample2d,
  Downsample2d,
  AvgPool2d,
  Embedding,
  Dropout,
  ReLU,
  SiLU,
  GELU,
  Tanh,
  Identity,
  Flatten,
  type LinearOptions,
  type Conv2dLayerOptions,
} from './layers.js';
export { GroupNorm, LayerNorm, groupNorm, layerNorm } from './norm.js';
export { SpatialAttention, type SpatialAttentionOptions } from './attention.js';
export { timestepEmbedding, crossEntropy, mseLoss, type TimestepEmbeddingOptions, type Reduction } from './functional.js';
export { kaimingUniform, uniformFanIn, normal, fanIn, deriveSeed, type InitOptions } from './init.js';
