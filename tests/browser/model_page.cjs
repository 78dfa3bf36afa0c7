/*
 * model_page.cjs - drives Debian's Chromium (through playwright-core, which
 * never downloads a browser of its own) against the real chubd to check what
 * a person sees:
 *
 *   - on a fresh hub, / shows the "no models yet" state with this hub's
 *     CHUB_API_ROOT, and /models/<unknown id> says "model not found";
 *   - a run seeded through the HTTP API (metrics over several requests, one
 *     epoch sent twice, a heartbeat, two checkpoints and a final) is listed
 *     on /, and its page draws exactly one point per epoch per metric (the
 *     charts' data-points checked against GET /ui/models/{id}/metrics), says
 *     trained, and every checkpoint link downloads the very bytes uploaded;
 *   - a page left open on a training run updates its charts in place as
 *     epochs arrive;
 *   - when the demo trainer is given (--trainer), a real training run shows
 *     one point per epoch and its final weights download byte for byte.
 *
 *   node model_page.cjs --chubd BIN --modules DIR --shots DIR [--trainer BIN]
 *
 * Every chubd and trainer it starts is killed by PID on every exit path.
 * Each wait is bounded in count and time. Screenshots go to
 * DIR/browser-index.png, DIR/browser-model.png (the seeded run) and, with
 * --trainer, DIR/browser-model-trainer.png.
 */
'use strict';

const { spawn, spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

/* ---- arguments and bookkeeping ------------------------------------------ */

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error('usage: model_page.cjs --chubd BIN --modules DIR ' +
                      '--shots DIR [--trainer BIN]');
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['chubd', 'modules', 'shots']) {
    if (!out[k]) throw new Error('model_page.cjs: --' + k + ' is required');
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const { chromium } = require(path.join(args.modules, 'playwright-core'));

const children = new Set(); /* PIDs of processes this test started */
const tmpDirs = [];
let passed = 0;
let failed = 0;

function killAll() {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      /* already gone */
    }
  }
  children.clear();
}

function removeTmp() {
  if (process.env.CHUB_KEEP_TMP) return;
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
}

process.on('exit', () => {
  killAll();
  removeTmp();
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

function tmpDir(tag) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'chub-browser-' + tag + '-'));
  tmpDirs.push(d);
  return d;
}

function check(cond, what, detail) {
  if (cond) {
    passed++;
    console.log('ok - ' + what);
  } else {
    failed++;
    console.log('not ok - ' + what + (detail ? ': ' + detail : ''));
  }
  return cond;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

/* Polls fn() every 100 ms until it returns a truthy value, at most `ms`. */
async function waitFor(what, fn, ms = 10000) {
  const tries = Math.ceil(ms / 100);
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v;
    await sleep(100);
  }
  throw new Error('timed out after ' + ms + ' ms waiting for ' + what);
}

/* ---- the real chubd ------------------------------------------------------ */

async function startChubd() {
  const work = tmpDir('chubd');
  const data = path.join(work, 'data');
  fs.mkdirSync(data);
  const log = path.join(work, 'chubd.log');
  const keyRun = spawnSync(args.chubd, ['--data', data, 'keys', 'create',
                                        'browser'],
                           { encoding: 'utf8', timeout: 10000 });
  const key = (keyRun.stdout || '').trim();
  if (keyRun.status !== 0 || !/^[A-Za-z0-9]{42}$/.test(key)) {
    throw new Error('chubd keys create failed (status ' + keyRun.status +
                    '): ' + keyRun.stderr);
  }
  const portFile = path.join(work, 'port');
  const logFd = fs.openSync(log, 'a');
  const proc = spawn(args.chubd, ['--listen', '127.0.0.1:0', '--data', data,
                                  '--port-file', portFile],
                     { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  children.add(proc.pid);
  let exited = null;
  proc.on('exit', (code, sig) => {
    exited = sig || String(code);
    children.delete(proc.pid);
  });
  const port = await waitFor('chubd port file', () => {
    if (exited !== null) {
      throw new Error('chubd exited (' + exited + ') before serving: ' +
                      fs.readFileSync(log, 'utf8'));
    }
    const s = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8') : '';
    return /^\d+\n$/.test(s) ? Number(s) : 0;
  });
  const hub = { proc, key, data, log, base: 'http://127.0.0.1:' + port };
  hub.stop = async () => {
    if (exited !== null) return;
    proc.kill('SIGTERM');
    try {
      await waitFor('chubd to exit on SIGTERM', () => exited !== null, 10000);
    } catch (e) {
      proc.kill('SIGKILL');
    }
  };
  return hub;
}

/* ---- seeding a run through the HTTP API ---------------------------------- */

async function call(hub, method, p, body, headers = {}) {
  const res = await fetch(hub.base + p, {
    method,
    headers: { 'x-api-key': hub.key, ...headers,
               ...(body && !(body instanceof FormData)
                   ? { 'content-type': 'application/json' } : {}) },
    body: body instanceof FormData ? body
          : body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (e) {
    json = null;
  }
  if (!res.ok) {
    throw new Error(method + ' ' + p + ' answered ' + res.status + ': ' +
                    text.slice(0, 300));
  }
  return json ? json.data : null;
}

async function createModel(hub, name, epochs) {
  const data = await call(hub, 'POST', '/v1/models', {
    config: { batchSize: 32, epochs, imageSize: 28, patience: 10,
              device: 'cpu', cache: 'ram' },
    dataset: { name: 'fashion-mnist' },
    lineage: { architecture: { name: 'mlp-256' } },
    meta: { name },
  });
  return data.id;
}

/* The epoch's flat map, as a trainer's on_fit_epoch_end builds it. */
function epochMetrics(e) {
  const m = {
    'train/loss': 1.4 * Math.exp(-e / 2) + 0.25,
    'metrics/accuracy_top1': 0.7 + 0.05 * e,
    'metrics/accuracy_top5': 0.95 + 0.008 * e,
  };
  /* Validation from epoch 1 on: a chart whose point count differs from the
   * number of epochs, as with validation every few epochs. */
  if (e >= 1) m['val/loss'] = 1.2 * Math.exp(-e / 3) + 0.3;
  if (e === 0) {
    Object.assign(m, { 'model/parameters': 203530, 'model/GFLOPs': 0.0004,
                       'model/speed_PyTorch(ms)': 0.12 });
  }
  return m;
}

async function sendMetrics(hub, id, epochs) {
  const metrics = {};
  for (const e of epochs) metrics[String(e)] = JSON.stringify(epochMetrics(e));
  await call(hub, 'POST', '/v1/models/' + id, { type: 'metrics', metrics });
}

async function upload(hub, id, fields, fileName, bytes) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  form.append('file', new Blob([bytes]), fileName);
  const data = await call(hub, 'POST', '/v1/models/' + id + '/upload', form);
  return data;
}

/* A five-epoch run: metrics over three requests (epoch 1 sent twice, as a
 * client does after a lost answer), a heartbeat, checkpoints at epochs 1
 * and 3, then the final weights. Returns the id and the uploaded bytes by
 * SHA-256. */
async function seedRun(hub) {
  const E = 5;
  const id = await createModel(hub, 'browser-seeded-run', E);
  await call(hub, 'POST', '/v1/agent/heartbeat/models/' + id,
             { agent: 'chub-browser-test', agentId: null });
  await sendMetrics(hub, id, [0, 1]);
  await sendMetrics(hub, id, [1, 2]);
  await sendMetrics(hub, id, [3, 4]);
  const files = new Map();
  const sizes = [300 * 1024 + 7, 300 * 1024 + 7, 2 * 1024 * 1024 + 123];
  const parts = [
    [{ epoch: 1, type: 'epoch', isBest: 'True' }, 'last.pt'],
    [{ epoch: 3, type: 'epoch', isBest: 'False' }, 'last.pt'],
    [{ epoch: 4, type: 'final', map: 0.8871 }, 'best.pt'],
  ];
  for (let i = 0; i < parts.length; i++) {
    const bytes = crypto.randomBytes(sizes[i]);
    const answer = await upload(hub, id, parts[i][0], parts[i][1], bytes);
    const sum = sha256(bytes);
    if (answer && answer.sha256 && answer.sha256 !== sum) {
      throw new Error('upload answered sha256 ' + answer.sha256 +
                      ', expected ' + sum);
    }
    files.set(sum, bytes.length);
  }
  return { id, epochs: E, files };
}

/* ---- what the page shows ------------------------------------------------- */

/* For each chartable metric (not model/*): how many epochs reported it. */
function expectedPoints(rows) {
  const counts = new Map();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r.metrics || {})) {
      if (k.startsWith('model/')) continue;
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      counts.set(k, (counts.get(k) || 0) + 1);
    }
  }
  return counts;
}

async function chartPoints(page) {
  return page.$$eval('[data-metric]', (els) =>
    els.map((el) => [el.getAttribute('data-metric'),
                     Number(el.getAttribute('data-points'))]));
}

async function openModel(page, hub, id) {
  await page.goto(hub.base + '/models/' + id);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
}

async function checkCharts(page, hub, id, label) {
  const rows = await call(hub, 'GET', '/ui/models/' + id + '/metrics');
  const want = expectedPoints(rows);
  await page.waitForFunction((n) =>
    document.querySelectorAll('[data-metric]').length >= n, want.size,
  { timeout: 10000 });
  const got = new Map(await chartPoints(page));
  check(got.size === want.size && [...want.keys()].every((k) => got.has(k)),
        label + ': one chart per metric (' + [...want.keys()].join(', ') + ')',
        'page has ' + JSON.stringify([...got.keys()]));
  for (const [name, n] of want) {
    check(got.get(name) === n,
          label + ': chart ' + name + ' has ' + n + ' points',
          'data-points=' + got.get(name));
  }
  const svgPoints = await page.$$eval('[data-metric] canvas', (c) => c.length);
  check(svgPoints === want.size, label + ': every chart has drawn a canvas',
        svgPoints + ' canvases for ' + want.size + ' charts');
  return { rows, want };
}

/* Downloads every checkpoint link from inside the page (with the page's
 * own cookie and origin) and returns their SHA-256s. */
async function linkDigests(page) {
  return page.$$eval('#checkpoints a.download', async (links) => {
    const out = [];
    for (const a of links) {
      const res = await fetch(a.href, { credentials: 'same-origin' });
      const buf = await res.arrayBuffer();
      const d = await crypto.subtle.digest('SHA-256', buf);
      out.push({
        href: a.getAttribute('href'),
        status: res.status,
        rowSha: a.closest('tr').getAttribute('data-sha256'),
        sha: [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0'))
          .join(''),
      });
    }
    return out;
  });
}

/* ---- the scenarios -------------------------------------------------------- */

async function freshHub(ctx, hub) {
  const page = await ctx.newPage();
  await page.goto(hub.base + '/');
  await page.waitForSelector('#empty', { timeout: 10000 });
  const text = await page.textContent('#empty');
  check(/No models yet/.test(text), 'fresh hub: / shows "No models yet"');
  check(text.includes('make demo') &&
        text.includes('CHUB_API_ROOT=' + hub.base),
        'fresh hub: empty state says how to start a run at this hub',
        JSON.stringify(text));

  await page.goto(hub.base + '/models/AAAAAAAAAAAAAAAAAAAA');
  await page.waitForSelector('#notfound:not([hidden])', { timeout: 10000 });
  const nf = await page.textContent('#notfound');
  check(/Model not found/.test(nf) && nf.includes('AAAAAAAAAAAAAAAAAAAA'),
        'unknown model: page says "Model not found" and names the id');
  check(await page.isHidden('#model'), 'unknown model: no model shown');
  await page.close();
}

async function seededRun(ctx, hub, shots) {
  const run = await seedRun(hub);
  const page = await ctx.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(hub.base + '/');
  const row = await page.waitForSelector('tr[data-model-id="' + run.id + '"]',
                                         { timeout: 10000 });
  const rowText = await row.textContent();
  check(rowText.includes('browser-seeded-run'), 'list: the run is listed by name');
  check(/trained/.test(rowText) && /5 \/ 5/.test(rowText),
        'list: the run shows trained and 5 / 5 epochs', rowText);
  check(await row.$('a[href="/models/' + run.id + '"]') !== null,
        'list: the name links to the model page');

  await openModel(page, hub, run.id);
  const status = await page.getAttribute('#status [data-status]',
                                         'data-status');
  check(status === 'trained', 'model page: status is trained', status);
  check((await page.textContent('#name')) === 'browser-seeded-run',
        'model page: shows the model name');
  const { want } = await checkCharts(page, hub, run.id, 'seeded run');
  check(want.get('train/loss') === run.epochs &&
        want.get('val/loss') === run.epochs - 1,
        'API: epoch sent twice is stored once; val/loss from epoch 1');
  const info = await page.textContent('#model-info');
  check(!(await page.isHidden('#model-info-section')) &&
        info.includes('203,530'),
        'model page: model/* shown as a table, not charts', info);
  const config = await page.textContent('#config');
  check(config.includes('fashion-mnist') && config.includes('mlp-256') &&
        config.includes('32'), 'model page: configuration shown', config);
  const agent = await page.textContent('#agent');
  check(agent.includes('chub-browser-test'),
        'model page: the agent and its heartbeat are shown', agent);

  const links = await linkDigests(page);
  check(links.length === run.files.size,
        'model page: one download link per checkpoint (' + run.files.size + ')',
        links.length + ' links');
  for (const l of links) {
    check(l.status === 200 && run.files.has(l.sha) && l.sha === l.rowSha,
          'download link ' + l.href.replace(/[0-9a-f]{64}$/, (h) =>
            h.slice(0, 12) + '…') + ' gives the uploaded bytes',
          'status ' + l.status + ', sha256 ' + l.sha);
  }
  const seen = new Set(links.map((l) => l.sha));
  check([...run.files.keys()].every((s) => seen.has(s)),
        'every uploaded checkpoint is downloadable from the page');

  /* A person clicking the link gets a file named after the model. */
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 10000 }),
    page.click('#checkpoints a.download >> nth=0'),
  ]);
  const file = await download.path();
  const bytes = fs.readFileSync(file);
  check(run.files.has(sha256(bytes)) &&
        download.suggestedFilename().startsWith(run.id),
        'clicking download saves the checkpoint as ' +
        download.suggestedFilename());

  await page.screenshot({ path: path.join(shots, 'browser-model.png'),
                          fullPage: true });
  await page.close();
  return run;
}

/* The sign-in page: an unknown key is refused with a message, the hub's
 * key leads to the model list. */
async function login(ctx, hub) {
  const page = await ctx.newPage();
  await page.goto(hub.base + '/login');
  await page.fill('#key', 'X'.repeat(42));
  await page.click('#login button');
  await page.waitForSelector('#login-error:not([hidden])', { timeout: 10000 });
  check(/does not know that key/.test(await page.textContent('#login-error')),
        'login: an unknown key is refused with a message');
  await page.fill('#key', hub.key);
  await page.click('#login button');
  try {
    await page.waitForURL(hub.base + '/', { timeout: 10000 });
  } catch (e) {
    /* reported just below with the page's address */
  }
  check(page.url() === hub.base + '/',
        'login: the hub\'s key leads to the model list', page.url());

  /* Sent to /login from a page, the person goes back there; a next that
   * names another host is ignored. */
  const back = '/models/AAAAAAAAAAAAAAAAAAAA';
  for (const [next, want] of [[back, back], ['//example.invalid/x', '/']]) {
    await page.goto(hub.base + '/login?next=' + encodeURIComponent(next));
    await page.fill('#key', hub.key);
    await page.click('#login button');
    try {
      await page.waitForURL(hub.base + want, { timeout: 10000 });
    } catch (e) {
      /* reported just below */
    }
    check(page.url() === hub.base + want,
          'login: with next=' + next + ' lands on ' + want, page.url());
  }
  await page.close();
}

/* A page left open on a training run follows it: new epochs show up in
 * the same chart elements (setData), without a reload. */
async function liveRun(ctx, hub) {
  const id = await createModel(hub, 'browser-live-run', 10);
  const page = await ctx.newPage();
  await openModel(page, hub, id);
  check(!(await page.isHidden('#no-metrics')),
        'live run: "no metrics yet" before the first epoch');
  await sendMetrics(hub, id, [0]);
  await page.waitForSelector('[data-metric="train/loss"]', { timeout: 10000 });
  await page.$eval('[data-metric="train/loss"]', (el) => {
    el.dataset.marker = 'kept';
  });
  await sendMetrics(hub, id, [1, 2]);
  await page.waitForSelector('[data-metric="train/loss"][data-points="3"]',
                             { timeout: 10000 });
  check(await page.$('[data-metric="train/loss"][data-marker="kept"]') !== null,
        'live run: the chart grew to 3 points in place, without a reload');
  const status = await page.getAttribute('#status [data-status]',
                                         'data-status');
  check(status === 'training', 'live run: status is training', status);
  check(await page.isHidden('#no-metrics'),
        'live run: "no metrics yet" gone once epochs arrive');
  await page.close();
}

/* The demo trainer, when built: a real run reported through libchub. */
async function trainerRun(ctx, hub) {
  const work = tmpDir('trainer');
  const config = path.join(work, 'config');
  const out = path.join(work, 'out');
  fs.mkdirSync(config);
  fs.writeFileSync(path.join(config, 'settings.json'), JSON.stringify({
    rate_limit_ckpt: 0, rate_limit_metrics: 0, sync: false,
  }));
  const epochs = 3;
  const env = {
    ...process.env,
    CHUB_CONFIG_DIR: config,
    CHUB_RUNS_DIR: path.join(work, 'runs'),
    CHUB_TESTING: '1',
    CHUB_API_ROOT: hub.base,
    CHUB_WEB_ROOT: hub.base,
    CHUB_API_KEY: hub.key,
    CHUB_HUB: 'true',
  };
  const before = new Set(((await call(hub, 'GET', '/ui/models?limit=100'))
    .results || []).map((m) => m.id));
  const proc = spawn(args.trainer, ['--limit', '600', '--epochs',
                                    String(epochs), '--out', out],
                     { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc.pid);
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  let code = null;
  proc.on('exit', (c, s) => {
    code = s || c;
    children.delete(proc.pid);
  });
  try {
    await waitFor('the trainer to finish', () => code !== null, 90000);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(e.message + '; its output:\n' + output);
  }
  if (!check(code === 0, 'trainer: exits 0', 'exit ' + code + ':\n' + output)) {
    return;
  }
  const models = (await call(hub, 'GET', '/ui/models?limit=100')).results;
  const m = models.find((x) => !before.has(x.id));
  if (!check(m !== undefined, 'trainer: its model is on the hub')) return;
  const page = await ctx.newPage();
  await openModel(page, hub, m.id);
  const status = await page.getAttribute('#status [data-status]',
                                         'data-status');
  check(status === 'trained', 'trainer run: status is trained', status);
  await page.screenshot({ path: path.join(args.shots,
                                          'browser-model-trainer.png'),
                          fullPage: true });
  const { want } = await checkCharts(page, hub, m.id, 'trainer run');
  check(want.size > 0 && [...want.values()].every((n) => n === epochs),
        'trainer run: every metric has one point per epoch (' + epochs + ')',
        JSON.stringify([...want]));
  const links = await linkDigests(page);
  check(links.length > 0 && links.every((l) => l.status === 200 &&
                                          l.sha === l.rowSha),
        'trainer run: every checkpoint link downloads what the hub recorded',
        JSON.stringify(links));
  const bestFile = fs.existsSync(path.join(out, 'best.bin'))
                   ? path.join(out, 'best.bin') : null;
  if (bestFile) {
    const want256 = sha256(fs.readFileSync(bestFile));
    check(links.some((l) => l.sha === want256),
          'trainer run: the final weights download equals ' + bestFile);
  }
  await page.close();
}

/* ---- main ----------------------------------------------------------------- */

async function main() {
  fs.mkdirSync(args.shots, { recursive: true });
  const profile = tmpDir('profile');
  const hub = await startChubd();
  let ctx = null;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--disable-quic'],
      acceptDownloads: true,
      viewport: { width: 1280, height: 900 },
      timeout: 30000,
    });
    const errors = [];
    ctx.on('page', (p) => p.on('pageerror', (e) => errors.push(e.message)));
    /* Nothing but the hub on loopback: a page that reached for a CDN or a
     * web font would show here. */
    const offsite = [];
    ctx.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol.startsWith('http') && u.origin !== hub.base) {
        offsite.push(r.url());
      }
    });

    await freshHub(ctx, hub);
    await login(ctx, hub);
    await seededRun(ctx, hub, args.shots);
    await liveRun(ctx, hub);
    if (args.trainer) {
      await trainerRun(ctx, hub);
    } else {
      console.log('# no --trainer given: the demo trainer run is not checked');
    }
    /* The list with every run this test made, for a person to look at. */
    const page = await ctx.newPage();
    await page.goto(hub.base + '/');
    await page.waitForSelector('#models table', { timeout: 10000 });
    check((await page.$$('tr[data-model-id]')).length >= 2,
          'list: every run of this test is listed');
    await page.screenshot({ path: path.join(args.shots, 'browser-index.png'),
                            fullPage: true });
    await page.close();
    check(errors.length === 0, 'no JavaScript errors on any page',
          errors.join(' | '));
    check(offsite.length === 0, 'pages load nothing from outside the hub',
          offsite.join(' '));
  } finally {
    if (ctx) await ctx.close();
    await hub.stop();
  }
}

main().then(() => {
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exit(failed === 0 ? 0 : 1);
}, (e) => {
  console.log('not ok - ' + (e && e.stack ? e.stack : e));
  failed++;
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exit(1);
});
