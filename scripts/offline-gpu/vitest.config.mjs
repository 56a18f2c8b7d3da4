// The Node test files that exercise the GPU path and need no data files or software adapter.
import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';
const src = (p) => fileURLToPath(new URL(`../../packages/${p}`, import.meta.url));
const core = ['api', 'bindgroups.node', 'conv', 'elementwise', 'errors', 'grad', 'layout', 'matmul', 'nn', 'optim', 'random', 'reduce', 'training', 'safetensors'];
const models = ['unet', 'flows', 'flows-fit', 'w1', 'image-metrics', 'mlp-score', 'diffusion-schedule'];
export default defineConfig({
  resolve: { alias: [
    { find: /^@transfuse\/kernels$/, replacement: src('kernels/src/index.ts') },
    { find: /^@transfuse\/core$/, replacement: src('core/src/node_main.ts') },
    { find: /^@transfuse\/core\/node$/, replacement: src('core/src/node.ts') },
    { find: /^@transfuse\/models$/, replacement: src('models/src/index.ts') },
    { find: /^@transfuse\/models\/node$/, replacement: src('models/src/node.ts') },
  ] },
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: [...core.map((f) => `packages/core/test/${f}.test.ts`), ...models.map((f) => `packages/models/test/${f}.test.ts`)],
    pool: 'forks', testTimeout: 60_000, hookTimeout: 60_000,
  },
});
