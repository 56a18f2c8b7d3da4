// Bundles each package's main entry for the browser, the way a web app's bundler would (the
// package.json `exports` with the 'browser' condition, no stubs), and fails if anything needs a
// Node built-in or is left unresolved. Only the packages' own npm dependencies may stay external.
// Run after `tsc -b` (it bundles dist/).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';

const packages = ['kernels', 'core', 'models'];
const nodeBuiltins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
let failed = false;

for (const name of packages) {
  const pkg = JSON.parse(readFileSync(`packages/${name}/package.json`, 'utf8'));
  // Everything is bundled (stricter than leaving the packages' own dependencies external).
  const external = [];
  const needed = new Set();
  const result = await build({
    stdin: { contents: `export * from '${process.env.BUNDLE_ENTRY ?? pkg.name}';`, resolveDir: process.cwd(), loader: 'js' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    external,
    logLevel: 'silent',
    metafile: true,
    plugins: [
      {
        name: 'report-node-builtins',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (args) => {
            if (nodeBuiltins.has(args.path) || args.path === 'webgpu') needed.add(`${args.path} (from ${args.importer})`);
            return undefined;
          });
        },
      },
    ],
  }).catch((e) => ({ errors: e.errors ?? [{ text: String(e) }], outputFiles: [] }));
  const problems = [...needed, ...result.errors.map((e) => `${e.text}${e.location ? ` (${e.location.file}:${e.location.line})` : ''}`)];
  const text = result.outputFiles[0]?.text ?? '';
  // A Node global at top level would break the page even when nothing is imported.
  for (const global of ['require(', '__dirname', '__filename']) if (text.includes(global)) problems.push(`bundle mentions ${global}`);
  if (problems.length > 0) {
    failed = true;
    console.error(`${pkg.name}: the browser bundle needs Node:\n  ${[...new Set(problems)].join('\n  ')}`);
  } else {
    const inputs = Object.keys(result.metafile.inputs).length;
    console.log(`${pkg.name}: browser bundle OK (${inputs} modules, ${(text.length / 1024).toFixed(0)} KiB, external: ${external.join(', ') || 'none'})`);
  }
}
process.exit(failed ? 1 : 0);
