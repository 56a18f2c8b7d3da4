import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { fileURLToPath } from 'node:url';
// @ts-expect-error plain ESM shared with the page check (no declaration file)
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from './scripts/chromium.mjs';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}`, import.meta.url));

// Tests run against the sources, so `npm test` needs no build of the package under test. Each
// project maps the package names to the entry that its platform's resolution would pick.
const aliases = (coreMain: string) => [
  { find: /^@transfuse\/kernels$/, replacement: src('kernels/src/index.ts') },
  { find: /^@transfuse\/core$/, replacement: src(`core/src/${coreMain}`) },
  { find: /^@transfuse\/core\/node$/, replacement: src('core/src/node.ts') },
  { find: /^@transfuse\/models$/, replacement: src('models/src/index.ts') },
  { find: /^@transfuse\/models\/node$/, replacement: src('models/src/node.ts') },
];

// Software drivers compile shaders at first dispatch (up to ~1.5 s each): generous timeouts.
const timeouts = { testTimeout: 120_000, hookTimeout: 120_000 };

export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias: aliases('node_main.ts') },
        test: {
          name: 'node',
          include: ['packages/*/test/**/*.test.ts'],
          // Dawn's native addon is loaded once per process: forks isolate it per test file.
          pool: 'forks',
          ...timeouts,
        },
      },
      {
        resolve: { alias: aliases('index.ts') },
        test: {
          name: 'browser',
          // Node-only tests (files, child processes, Dawn's adapters, Node's GC) are named *.node.test.ts.
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['**/*.node.test.ts', '**/node_modules/**'],
          ...timeouts,
          // One page at a time: SwiftShader runs every page's shaders on the same CPU cores.
          fileParallelism: false,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            // Playwright's launch() starts Chromium with a fresh temporary profile (user data dir).
            provider: playwright({ launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_FLAGS } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
