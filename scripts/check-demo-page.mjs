// Opens the import-map example and then the demo page in headless Chromium (Debian's, through playwright-core, with a fresh
// user data dir), waits for the fine-tuning run to finish, and checks that the held-out loss
// fell, that the class embedding stayed frozen, and that both sample canvases hold non-blank
// digits. Saves a screenshot to results/demo-page/. Run from the checkout after `tsc -b`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from './chromium.mjs';
import { serveDemoPage } from '../demo-page/serve.mjs';

const TIMEOUT_MS = Number(process.env.DEMO_PAGE_TIMEOUT_S ?? 900) * 1000;
const out = 'results/demo-page';
mkdirSync(out, { recursive: true });

execFileSync('npx', ['tsc', '-p', 'demo-page'], { stdio: 'inherit' }); // esbuild strips types without checking them
await import('../demo-page/build.mjs');
const server = await serveDemoPage(0);
const origin = `http://localhost:${server.address().port}`;
const profile = mkdtempSync(join(tmpdir(), 'transfuse-chromium-'));
const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, args: CHROMIUM_FLAGS, headless: true, viewport: { width: 1100, height: 1000 } });
const failures = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  // Without a bundler: the import map in importmap.html loads the packages' dist/ as they are.
  await page.goto(`${origin}/demo-page/importmap.html`);
  await page.waitForFunction(() => window.result, null, { timeout: 120_000 });
  const imported = await page.evaluate(() => window.result);
  if (imported.error || JSON.stringify(imported.matmul) !== '[[-1],[-1]]' || JSON.stringify(imported.unetShape) !== '[2,1,8,8]' || !imported.unetFinite) {
    failures.push(`import-map page: ${JSON.stringify(imported)}`);
  } else console.log('import-map page: matmul and a U-Net forward ran from the dist/ folders');

  const started = Date.now();
  await page.goto(`${origin}/demo-page/${process.env.DEMO_PAGE_QUERY ?? ''}`);
  await page.waitForFunction(() => window.demo && window.demo.state !== 'running', null, { timeout: TIMEOUT_MS, polling: 1000 });
  const seconds = (Date.now() - started) / 1000;
  const demo = await page.evaluate(() => window.demo);
  // Per grid cell (48x48 digit + border): the share of bright pixels. A digit has some ink and is not a filled square.
  const inkShares = (id) =>
    page.evaluate((canvasId) => {
      const canvas = document.getElementById(canvasId);
      const { data, width } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      const cell = 49;
      const shares = [];
      for (let k = 0; k < 20; k++) {
        const ox = (k % 10) * cell + 1;
        const oy = Math.floor(k / 10) * cell + 1;
        let ink = 0;
        for (let y = 0; y < 48; y++) for (let x = 0; x < 48; x++) if (data[4 * ((oy + y) * width + ox + x)] > 128) ink++;
        shares.push(ink / (48 * 48));
      }
      return shares;
    }, id);
  await page.screenshot({ path: join(out, 'screenshot.png'), fullPage: true });
  const before = await inkShares('before');
  const after = await inkShares('after');
  writeFileSync(join(out, 'result.json'), JSON.stringify({ ...demo, pageSeconds: seconds, inkBefore: before, inkAfter: after }, null, 2));
  if (demo.state !== 'done') failures.push(`the page failed: ${demo.error}`);
  else {
    if (!(demo.evalLossAfter < demo.evalLossBefore)) failures.push(`held-out loss did not fall: ${demo.evalLossBefore} -> ${demo.evalLossAfter}`);
    if (!demo.embeddingUnchanged) failures.push('the class embedding changed during fine-tuning (it should be frozen)');
    for (const [name, shares] of [['before', before], ['after', after]]) {
      const digits = shares.filter((s) => s > 0.03 && s < 0.6).length;
      if (digits < 16) failures.push(`canvas '${name}': only ${digits} of 20 cells look like digits (ink shares ${shares.map((s) => s.toFixed(2)).join(' ')})`);
    }
    console.log(
      `demo page: ${demo.adapter}; ${demo.steps} fine-tuning steps in ${demo.fineTuneSeconds.toFixed(1)} s; held-out loss ` +
        `${demo.evalLossBefore.toFixed(4)} -> ${demo.evalLossAfter.toFixed(4)}; whole page ${seconds.toFixed(0)} s; screenshot ${out}/screenshot.png`,
    );
  }
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failures.length > 0) {
  console.error(`check-demo-page failed:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
