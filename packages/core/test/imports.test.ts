/**
 * core's modules form no import cycle. Walks the value imports (`import type` is erased by
 * TypeScript, so it cannot make a cycle at run time) of every file under packages/core/src and
 * fails with the first cycle found, as a path of files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative specifiers this file loads at run time (import/export ... from, side-effect imports). */
export function valueImports(text: string): string[] {
  const out: string[] = [];
  const statement = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?)\s*(?:from\s+)?['"]([^'"]+)['"]/g;
  for (const m of text.matchAll(statement)) {
    const [, , typeOnly, clause, spec] = m;
    if (typeOnly || !spec.startsWith('.')) continue;
    // `import { type A, type B } from` is erased too.
    const names = /^\{([^}]*)\}$/.exec(clause.trim());
    if (names && names[1].split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))) continue;
    out.push(spec);
  }
  return out;
}

function resolveSpec(from: string, spec: string): string {
  const p = resolve(dirname(from), spec.replace(/\.js$/, '.ts'));
  return p.endsWith('.ts') ? p : join(p, 'index.ts');
}

/** The first cycle in the graph as a list of files (first = last), or null. */
export function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (f: string): string[] | null => {
    if (state.get(f) === 'done') return null;
    if (state.get(f) === 'open') return [...path.slice(path.indexOf(f)), f];
    state.set(f, 'open');
    path.push(f);
    for (const g of graph.get(f) ?? []) {
      const c = visit(g);
      if (c) return c;
    }
    path.pop();
    state.set(f, 'done');
    return null;
  };
  for (const f of graph.keys()) {
    const c = visit(f);
    if (c) return c;
  }
  return null;
}

describe('core imports', () => {
  test('the parser sees value imports and skips type-only ones', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from './b.js';",
      "import { type C, type D } from './c.js';",
      "import { type E, f } from './e.js';",
      "export * from './g.js';",
      "export type { H } from './h.js';",
      "import './side.js';",
      "import {\n  i,\n  j,\n} from './ij.js';",
      "import { k } from 'node:fs';",
    ].join('\n');
    expect(valueImports(text)).toEqual(['./a.js', './e.js', './g.js', './side.js', './ij.js']);
  });

  test('the cycle finder reports a cycle and passes a tree', () => {
    expect(findCycle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]))).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]]))).toBeNull();
  });

  test('no cycle among the modules of packages/core/src', () => {
    const files = sourceFiles(SRC);
    const graph = new Map(files.map((f) => [f, valueImports(readFileSync(f, 'utf8')).map((s) => resolveSpec(f, s))]));
    for (const [f, deps] of graph) {
      for (const d of deps) expect(graph.has(d), `${relative(SRC, f)} imports a missing ${relative(SRC, d)}`).toBe(true);
    }
    const cycle = findCycle(graph);
    expect(cycle && cycle.map((f) => relative(SRC, f)).join(' -> ')).toBeNull();
  });
});
