/** @transfuse/bench: benchmark cases, the tinybench runner and the TF.js peer, for use from scripts. */
export { allCases } from './cases.js';
export { runCases, type RunOptions } from './run.js';
export { loadTfjs, type TfjsPeer } from './peer_tfjs.js';
export { loadTorch, type TorchPeer } from './peer_torch.js';
export { formatTable, targetLines, parseCliArgs, ceilings, median, throughputOf, type CliOptions } from './report.js';
export * from './types.js';
