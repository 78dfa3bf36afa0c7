/*
 * pages_same.cjs - the same model's page on two hubs shows the same run: a
 * hub and its copy (`chubd migrate` into PostgreSQL) draw the same charts
 * with the same number of points per metric, the same status and the same
 * checkpoints, in Debian's Chromium through playwright-core.
 *
 *   node pages_same.cjs --modules DIR --a URL --b URL --model ID --shots DIR
 *
 * Both hubs are on loopback, so the pages need no key. Screenshots go to
 * DIR/browser-migrate-a.png and DIR/browser-migrate-b.png. Exits 1 on the
 * first difference, saying what differs. Every wait is bounded.
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].slice(2)] = argv[i + 1];
  for (const k of ['modules', 'a', 'b', 'model', 'shots']) {
    if (!out[k]) throw new Error('pages_same.cjs: --' + k + ' is required');
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const { chromium } = require(path.join(args.modules, 'playwright-core'));

/* What a person sees of the run: each chart and its points, the status,
 * the checkpoint rows. */
async function seen(page, base, label) {
  await page.goto(base + '/models/' + args.model);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
  /* Drawn: every chart has its canvas (a chart is an element with
   * data-points; other elements may name a metric too). */
  try {
    await page.waitForFunction(() => {
      const charts = document.querySelectorAll('[data-metric][data-points]');
      return charts.length > 0 &&
        [...charts].every((c) => c.querySelector('canvas'));
    }, null, { timeout: 15000 });
  } catch (e) {
    const state = await page.evaluate(() => ({
      metrics: document.querySelectorAll('[data-metric]').length,
      charts: document.querySelectorAll('[data-metric][data-points]').length,
      canvases: document.querySelectorAll('canvas').length,
      text: document.body.innerText.slice(0, 300),
    }));
    throw new Error(label + ': the charts were not drawn within 15 s (' +
                    JSON.stringify(state) + ')');
  }
  await page.screenshot({ path: path.join(args.shots,
    'browser-migrate-' + label + '.png'), fullPage: true });
  return page.evaluate(() => ({
    charts: [...document.querySelectorAll('[data-metric][data-points]')]
      .map((el) => el.getAttribute('data-metric') + '=' +
                   el.getAttribute('data-points')).sort(),
    status: document.querySelector('#status [data-status]')
      ?.getAttribute('data-status') || '',
    checkpoints: document.querySelectorAll('#checkpoints tr').length,
    config: document.querySelector('#config')?.innerText || '',
  }));
}

async function main() {
  fs.mkdirSync(args.shots, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chub-pages-same-'));
  let ctx = null;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update',
             '--disable-sync'],
      viewport: { width: 1280, height: 900 },
      timeout: 30000,
    });
    const page = await ctx.newPage();
    const a = await seen(page, args.a, 'a');
    const b = await seen(page, args.b, 'b');
    if (a.charts.length === 0) throw new Error('hub a draws no chart');
    for (const k of ['charts', 'status', 'checkpoints', 'config']) {
      if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
        throw new Error('the pages differ in ' + k + ': ' +
                        JSON.stringify(a[k]) + ' against ' + JSON.stringify(b[k]));
      }
    }
    console.log('pages_same: both pages draw ' + a.charts.length +
                ' charts (' + a.charts.join(', ') + '), ' + a.checkpoints +
                ' checkpoint rows, status ' + a.status + ', the same configuration');
  } finally {
    if (ctx) await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error('pages_same: ' + e.message);
  process.exit(1);
});
