// Bundles the page for the browser (esbuild, the packages' 'browser' export condition) into
// demo-page/dist/main.js. Run from the checkout after `tsc -b`.
import { build } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
await build({
  entryPoints: [`${here}main.ts`],
  outfile: `${here}dist/main.js`,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  logLevel: 'warning',
});
