/*
 * page.cjs - bench/scale's browser figure: how long the model page takes
 * in Chromium (through playwright-core from the browser test's npm
 * directory; it never downloads a browser) from navigation until its
 * charts are drawn.
 *
 *   node page.cjs --modules DIR --url HUB --model ID --loads N --out FILE
 *
 * "Drawn" is model.js's own signal, body[data-loaded="true"] (set once the
 * first answer was rendered into the charts), followed by two animation
 * frames so that uPlot's canvases have been painted. Two loads warm up
 * the browser's cache first; then N timed loads, each a fresh navigation
 * of the same tab. Writes the N times in milliseconds (a JSON array) to
 * FILE. Asserts nothing.
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i + 1 < argv.length; i += 2) out[argv[i].slice(2)] = argv[i + 1];
  for (const k of ['modules', 'url', 'model', 'loads', 'out']) {
    if (!out[k]) throw new Error('page.cjs: --' + k + ' is required');
  }
  return out;
}

async function loadOnce(page, url) {
  const t0 = Date.now();
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 120000 });
  await page.evaluate(() => new Promise((resolve) =>
    requestAnimationFrame(() => requestAnimationFrame(resolve))));
  const ms = Date.now() - t0;
  const charts = await page.$$eval('[data-metric]', (els) => els.length);
  if (charts === 0) throw new Error('page.cjs: no chart drawn on ' + url);
  return ms;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { chromium } = require(path.join(args.modules, 'playwright-core'));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chub-bench-page-'));
  let ctx = null;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--disable-quic'],
      viewport: { width: 1280, height: 900 },
      timeout: 30000,
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    const url = args.url + '/models/' + args.model;
    const times = [];
    for (let i = 0; i < 2 + Number(args.loads); i++) {
      const ms = await loadOnce(page, url);
      if (i >= 2) times.push(ms);
    }
    fs.writeFileSync(args.out, JSON.stringify(times));
  } finally {
    if (ctx) await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
