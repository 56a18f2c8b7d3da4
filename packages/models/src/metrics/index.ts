export { pairwiseEuclidean, slicedW1, solveAssignment, solveTransport, w1Exact, w1FromCost, w1OneDim } from './w1.js';
export type { AssignmentResult, PointSet, SlicedW1Options, TransportResult, W1Method, W1Options } from './w1.js';
export * from './gpu.js';
