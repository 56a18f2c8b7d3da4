/**
 * vitest strips types without checking them, so this runs TypeScript over the tests: the op
 * tables in cases.ts `satisfies` a record over every differentiable kernel row, and a row without
 * a test case must fail here, not pass silently.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

test('the core tests type-check (every differentiable row has a rule and a test case)', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const project = dirname(fileURLToPath(import.meta.url));
  let out = '';
  try {
    execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? e);
  }
  expect(out).toBe('');
});
