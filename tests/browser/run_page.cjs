/*
 * run_page.cjs - a model page's run parts in Debian's Chromium against the
 * real chubd, with the runs played through the real HTTP API:
 *
 *   - a run reported through Ultralytics Platform's webhooks (start with
 *     its environment, console chunks, epochs with the machine's load for
 *     two GPUs): the page shows the console without terminal codes, and its
 *     tail grows by itself while the page is open; the search keeps the
 *     matching lines; "Download log" gives the whole log; CPU, RAM and
 *     per-GPU charts have a point per epoch; the environment is listed;
 *   - Stop: the button asks first ("Keep running" asks nothing of the hub),
 *     then asks the hub; the run's next epoch_end is answered cancelled and
 *     the page says cancelled; after training_complete the page draws the
 *     confusion matrix as a heat map and the PR and F1 curves, one line per
 *     class plus all classes, with the results;
 *   - a HUB run with libchub's heartbeats: load charts over time, and a
 *     Stop button that says the HUB protocol cannot stop its client.
 *
 *   node run_page.cjs --chubd BIN --modules DIR --shots DIR
 *
 * Screenshots: DIR/browser-run.png (the Platform run), DIR/browser-run-hub.png.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const t = require('./harness.cjs');

const { check, waitFor, call, webhook } = t;
const args = t.parseArgs(process.argv.slice(2), ['chubd', 'modules', 'shots']);

/* ---- a Platform run, as ultralytics sends it ----------------------------- */

const PROJECT = 'browser-proj';
const RUN = 'train';

function event(name, data, modelId) {
  return { event: name, project: PROJECT, name: RUN, data,
           ...(modelId ? { modelId } : {}) };
}

function load(e) {
  return { cpu: 20 + e * 10, ram: 40 + e, disk: { read_mbs: 1, write_mbs: 2,
           used_gb: 50 }, network: { recv_mbs: 0.5, sent_mbs: 0.1 },
           gpus: { 0: { usage: 80 + e, memory: 30, temp: 60, power: 200 },
                   1: { usage: 70 + e, memory: 25, temp: 58, power: 190 } } };
}

async function epoch(hub, id, e) {
  const a = await webhook(hub, '/training/metrics', event('epoch_end', {
    epoch: e,
    metrics: { 'train/box_loss': 2 - e * 0.3, 'metrics/mAP50-95(B)':
               0.2 + e * 0.1 },
    system: load(e), fitness: 0.2 + e * 0.1, best_fitness: 0.2 + e * 0.1,
  }, id));
  return a.cancelled;
}

let chunkNo = 0;
async function consoleChunk(hub, id, text) {
  chunkNo++;
  await webhook(hub, '/training/metrics', event('console_output', {
    chunkId: 'c' + chunkNo, content: text,
    lineCount: text.split('\n').length - 1,
  }, id));
}

/* ---- the page ------------------------------------------------------------ */

async function attr(page, sel, name) {
  return page.$eval(sel, (el, n) => el.getAttribute(n), name)
    .catch(() => null);
}

async function platformRun(ctx, hub) {
  const started = await webhook(hub, '/training/metrics',
    event('training_started', {
      trainArgs: { model: 'yolo11n.pt', data: 'coco8.yaml', epochs: '3' },
      epochs: 3, device: 'cpu',
      environment: { os: 'Linux', python: '3.12.1', hostname: 'gpu-box-7' },
    }));
  const id = started.modelId;
  check(typeof id === 'string' && id.length === 20,
        'platform: training_started gives a model id');
  await consoleChunk(hub, id,
    '\x1b[34mUltralytics\x1b[0m 8.4.0 Python-3.12.1\n' +
    'Epoch 1/3 10%\rEpoch 1/3 100% loss 1.9\n' +
    'epoch 1 done\n');
  await epoch(hub, id, 0);
  await epoch(hub, id, 1);

  const page = await ctx.newPage();
  await page.goto(hub.base + '/models/' + id);
  await page.waitForSelector('body[data-run]', { timeout: 15000 });
  await waitFor('the console', async () =>
    (await attr(page, '#console', 'data-lines')) === '3');
  const text = await page.$eval('#console', (el) => el.textContent);
  check(text.includes('Ultralytics 8.4.0') && !text.includes('\x1b') &&
        text.includes('Epoch 1/3 100% loss 1.9') && !text.includes('10%'),
        'console: shown without terminal codes or progress redraws',
        JSON.stringify(text));

  /* The tail grows while the page is open. */
  await consoleChunk(hub, id, 'epoch 2 started\nepoch 2 done\n');
  await waitFor('the console to grow', async () =>
    (await attr(page, '#console', 'data-lines')) === '5', 15000);
  check(await page.$eval('#console', (el) =>
    el.textContent.endsWith('epoch 2 done')),
        'console: the new chunk shows at the end by itself');

  /* Search. */
  await page.fill('#console-search', 'DONE');
  await waitFor('the search', async () =>
    (await attr(page, '#console', 'data-matches')) === '2');
  const marks = await page.$$eval('#console mark', (ms) =>
    ms.map((m) => m.textContent));
  check(marks.length === 2 && marks.every((m) => m === 'done'),
        'console: the search keeps the two matching lines, marked',
        JSON.stringify(marks));
  await page.fill('#console-search', '');
  await waitFor('every line back', async () =>
    (await page.$eval('#console', (el) => el.textContent.split('\n').length))
      === 5);

  /* Download of the whole log. */
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 10000 }),
    page.click('#console-download'),
  ]);
  const saved = await download.path();
  const log = fs.readFileSync(saved, 'utf8');
  check(log.startsWith('\x1b[34mUltralytics') &&
        log.endsWith('epoch 2 started\nepoch 2 done\n') &&
        log.split('\n').length === 6,
        'console: "Download log" gives the whole log as sent',
        JSON.stringify(log.slice(0, 80)));

  /* The machine's load, a point per epoch, a line per GPU. */
  await waitFor('the load charts', async () =>
    (await attr(page, '[data-system="cpu"]', 'data-points')) === '2');
  check((await attr(page, '[data-system="ram"]', 'data-points')) === '2',
        'load: RAM chart with a point per epoch');
  check((await attr(page, '[data-system="gpu-usage"]', 'data-series')) ===
          '2' &&
        (await attr(page, '[data-system="gpu-memory"]', 'data-points')) ===
          '4',
        'load: GPU utilisation and memory with a line per GPU');
  check((await page.textContent('#environment')).includes('gpu-box-7'),
        'environment: the run\'s host is listed');

  /* Stop: asked first; "Keep running" asks nothing of the hub. */
  await page.waitForSelector('#stop', { timeout: 10000 });
  await page.click('#stop');
  await page.waitForSelector('#stop-confirm', { timeout: 5000 });
  await page.click('text=Keep running');
  await page.waitForSelector('#stop', { timeout: 5000 });
  let run = await call(hub, 'GET', '/v1/models/' + id + '/run');
  check(run.stopAsked === false, 'stop: "Keep running" leaves the run alone');
  await page.click('#stop');
  await page.click('#stop-confirm');
  await page.waitForSelector('#stop-asked', { timeout: 10000 });
  run = await call(hub, 'GET', '/v1/models/' + id + '/run');
  check(run.stopAsked === true, 'stop: confirmed, the hub has the stop');
  const cancelled = await epoch(hub, id, 2);
  check(cancelled === true, 'stop: the next epoch_end is answered cancelled');
  await page.waitForSelector('[data-status="cancelled"]', { timeout: 15000 });
  check((await page.textContent('#run-stop')).includes('epoch 2'),
        'stop: the page says cancelled, at which epoch');

  /* The end of the run: results and plots. */
  const x = Array.from({ length: 101 }, (_, i) => i / 100);
  await webhook(hub, '/training/metrics', event('training_complete', {
    results: { metrics: { 'metrics/mAP50-95(B)': 0.41 }, bestEpoch: 2,
               bestFitness: 0.41 },
    classNames: ['cat', 'dog'],
    plots: {
      confusion_matrix: { matrix: [[9, 1, 2], [0, 7, 1], [1, 2, 0]] },
      pr_curve: { x, y: [x.map((v) => 1 - v * 0.5), x.map((v) => 1 - v)],
                  ap: [0.8, 0.6] },
      f1_curve: { x, y: [x.map((v) => v * (1 - v)), x.map((v) => v / 2)] },
    },
  }, id));
  await page.reload();
  await page.waitForSelector('[data-plot="confusion_matrix"]',
                             { timeout: 15000 });
  check((await attr(page, '[data-plot="confusion_matrix"]', 'data-size')) ===
          '3',
        'plots: the confusion matrix as a 3x3 heat map (two classes and ' +
        'background)');
  const lit = await page.$eval('[data-plot="confusion_matrix"] canvas',
    (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++;
      return n;
    });
  check(lit > 1000, 'plots: the heat map is drawn', String(lit));
  check((await attr(page, '[data-plot="pr_curve"]', 'data-series')) === '3' &&
        (await attr(page, '[data-plot="f1_curve"]', 'data-series')) === '3',
        'plots: PR and F1 curves with a line per class and all classes');
  check((await page.textContent('[data-plot="pr_curve"]')).includes(
    'AP 0.700'), 'plots: the PR legend gives the mean AP');
  check((await page.textContent('#results')).includes('Best epoch'),
        'results: listed');
  await page.screenshot({ path: path.join(args.shots, 'browser-run.png'),
                          fullPage: true });
  await page.close();
}

/* ---- a HUB run with libchub's heartbeats --------------------------------- */

async function hubRun(ctx, hub) {
  const made = await call(hub, 'POST', '/v1/models', {
    config: { epochs: 5 }, meta: { name: 'hub-load' } });
  const id = made.id;
  let agentId = null;
  for (let i = 0; i < 3; i++) {
    const beat = await call(hub, 'POST', '/v1/agent/heartbeat/models/' + id, {
      agent: 'chub', agentId, system: { cpu: 10 + i, ram: 30 + i, gpus: {} },
    });
    agentId = beat.agentId;
    await t.sleep(20);
  }
  const page = await ctx.newPage();
  await page.goto(hub.base + '/models/' + id);
  await page.waitForSelector('body[data-run]', { timeout: 15000 });
  await waitFor('the load chart', async () =>
    (await attr(page, '[data-system="cpu"]', 'data-points')) === '3');
  check(await page.isHidden('[data-system="gpu-usage"]').catch(() => true),
        'hub run: no GPU chart without GPUs');
  check(await page.isDisabled('#stop'),
        'hub run: the Stop button is disabled');
  check((await page.textContent('#stop-unsupported')).includes('HUB protocol'),
        'hub run: the page says its client cannot be stopped');
  check(await page.isHidden('#console-section'),
        'hub run: no console section without console output');
  await page.screenshot({ path: path.join(args.shots, 'browser-run-hub.png'),
                          fullPage: true });
  await page.close();
}

t.runPages(args, async (ctx, hub) => {
  await platformRun(ctx, hub);
  await hubRun(ctx, hub);
});
