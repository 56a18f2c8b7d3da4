import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources, so `npm test` needs no build of the package under test.
    alias: {
      '@transfuse/kernels': src('kernels'),
      '@transfuse/core': src('core'),
      '@transfuse/models': src('models'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    // Dawn's native addon is loaded once per process: forks isolate it per test file.
    pool: 'forks',
    // Software drivers compile shaders at first dispatch (up to ~1.5 s each): generous timeouts.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
