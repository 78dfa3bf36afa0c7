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
 *   - datasets: a fresh hub's /datasets says there are none and
 *     /datasets/<unknown id> says "dataset not found"; a dataset created
 *     through the API (a small stored zip built here) is listed on
 *     /datasets with its status, size and files, and its page turns ready
 *     by itself when the zip is uploaded, shows size, SHA-256, file name and
 *     entries, and its download link gives the very bytes uploaded;
 *   - the "New model" form on /: an owner select exactly when /ui/owners
 *     leaves a choice (signed in and one owner are answered by the test, as
 *     a loopback hub ignores the cookie), and it sends only what was filled
 *     in; created from that dataset, it
 *     shows the model's link and the two command lines (which name the
 *     model's URL), the model is listed, the hub gave it the dataset's
 *     download URL as its data, and the dataset page lists it; a dataset
 *     gone before the form is sent shows the hub's message.
 *
 *   node model_page.cjs --chubd BIN --modules DIR --shots DIR [--trainer BIN]
 *
 * Every chubd and trainer it starts is killed by PID on every exit path.
 * Each wait is bounded in count and time. Screenshots go to
 * DIR/browser-index.png, DIR/browser-model.png (the seeded run),
 * DIR/browser-datasets.png, DIR/browser-dataset.png, DIR/browser-new-model.png
 * (the form's answer) and, with --trainer, DIR/browser-model-trainer.png.
 */
'use strict';

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const t = require('./harness.cjs');

const { check, sleep, waitFor, tmpDir, call } = t;
const args = t.parseArgs(process.argv.slice(2), ['chubd', 'modules', 'shots']);
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const startChubd = (extra = []) => t.startChubd(args.chubd, extra);

/* ---- seeding a run through the HTTP API ---------------------------------- */

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

/* ---- datasets: a small zip built here ----------------------------------- */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/* A zip of stored (method 0) entries: [name, Buffer] pairs -> Buffer. Each
 * entry: local header + data; then the central directory and its end. */
function storedZip(entries) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  const dosTime = (12 << 11) | (0 << 5);             /* 12:00:00 */
  const dosDate = ((2024 - 1980) << 9) | (1 << 5) | 1; /* 2024-01-01 */
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);      /* version needed */
    local.writeUInt16LE(0x0800, 6);  /* flags: UTF-8 names */
    local.writeUInt16LE(0, 8);       /* stored */
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);    /* version made by */
    central.writeUInt16LE(20, 6);    /* version needed */
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(dosTime, 12);
    central.writeUInt16LE(dosDate, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    /* extra, comment, disk, internal and external attributes: 0 */
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, data);
    centrals.push(central, nameBuf);
    offset += local.length + nameBuf.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/* A tiny dataset in the shape of an Ultralytics one: its yaml, two images
 * (random bytes stand in for JPEGs) and their labels. */
function datasetZip() {
  return storedZip([
    ['browser-data/data.yaml', Buffer.from(
      'path: .\ntrain: images/train\nval: images/train\n' +
      'names:\n  0: shirt\n  1: boot\n')],
    ['browser-data/images/train/0001.jpg', crypto.randomBytes(3000)],
    ['browser-data/images/train/0002.jpg', crypto.randomBytes(5000)],
    ['browser-data/labels/train/0001.txt',
     Buffer.from('0 0.5 0.5 0.25 0.25\n')],
    ['browser-data/labels/train/0002.txt',
     Buffer.from('1 0.4 0.6 0.2 0.3\n')],
  ]);
}

/* Uploads `bytes` as the dataset's zip, the field named after the file as
 * hub-sdk does. */
async function uploadDataset(hub, id, fileName, bytes) {
  const form = new FormData();
  form.append(fileName, new Blob([bytes]), fileName);
  return call(hub, 'POST', '/v1/datasets/' + id + '/upload', form);
}

/* The same as common.js's fmtBytes, to know what the page should say. */
function fmtBytes(n) {
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) +
         ' ' + units[i];
}

/* Whether `url` is a download URL of dataset `dsid` (any host, any query). */
function isDatasetDownload(url, dsid, sha) {
  let u = null;
  try {
    u = new URL(url);
  } catch (e) {
    return false;
  }
  const prefix = '/v1/datasets/' + dsid + '/download/' + (sha ? sha + '/' : '');
  return /^https?:$/.test(u.protocol) && u.pathname.startsWith(prefix);
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

  /* Datasets on a fresh hub: none, and an unknown one is not found. */
  await page.goto(hub.base + '/');
  check(await page.$('header .top-nav a[href="/datasets"]') !== null,
        'header: the model list links to Datasets');
  await page.click('header .top-nav a[href="/datasets"]');
  await page.waitForSelector('#empty', { timeout: 10000 });
  check(page.url() === hub.base + '/datasets',
        'header: the Datasets link leads to /datasets', page.url());
  const dsEmpty = await page.textContent('#empty');
  check(/No datasets yet/.test(dsEmpty) &&
        dsEmpty.includes(hub.base + '/v1/datasets'),
        'fresh hub: /datasets says there are none and how to add one',
        JSON.stringify(dsEmpty));
  await page.goto(hub.base + '/datasets/AAAAAAAAAAAAAAAAAAAA');
  await page.waitForSelector('#notfound:not([hidden])', { timeout: 10000 });
  const dsNf = await page.textContent('#notfound');
  check(/Dataset not found/.test(dsNf) &&
        dsNf.includes('AAAAAAAAAAAAAAAAAAAA'),
        'unknown dataset: page says "Dataset not found" and names the id');

  /* Not signed in on a loopback hub with two keys: the form asks whose
   * model it is. */
  await page.goto(hub.base + '/');
  await page.click('#new-model-open');
  await page.waitForSelector('#new-model-form[data-ready]', { timeout: 10000 });
  const owners = await page.$$eval('#nm-owner option', (os) =>
    os.map((o) => o.value));
  check(!(await page.isHidden('#nm-owner')) &&
        owners.includes('browser') && owners.includes('browser-other'),
        'new model form, no key on loopback: an owner select with every ' +
        'owner', JSON.stringify(owners));
  const dsOptions = await page.$$eval('#nm-dataset option', (os) =>
    os.map((o) => o.value));
  check(dsOptions.length === 1 && dsOptions[0] === '',
        'new model form, fresh hub: no dataset to choose but "none"',
        JSON.stringify(dsOptions));
  await page.click('#new-model-close');
  check(await page.isHidden('#new-model'), 'new model form: Close hides it');
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

/* What the form does with each answer of /ui/owners. A loopback hub
 * ignores the cookie, so "signed in" (`you` set) and "one owner" cannot be
 * had from this hub: /ui/owners is answered here, and the request the form
 * then sends is caught (and answered 400 with a message the form must show)
 * instead of reaching the hub. */
async function ownerCases(ctx, hub) {
  const cases = [
    { what: 'signed in', owners: ['browser'], you: 'browser', select: false,
      sends: undefined },
    { what: 'one owner', owners: ['browser'], you: null, select: false,
      sends: 'browser' },
    { what: 'two owners', owners: ['browser', 'browser-other'], you: null,
      select: true, sends: 'browser-other' },
  ];
  for (const c of cases) {
    const page = await ctx.newPage();
    let sent = null;
    await page.route(hub.base + '/ui/owners', (route) => route.fulfill({
      status: 200, contentType: 'application/json',
      body: JSON.stringify({ success: true, message: '',
                             data: { owners: c.owners, you: c.you } }),
    }));
    await page.route(hub.base + '/ui/models', (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      sent = route.request().postDataJSON();
      return route.fulfill({
        status: 400, contentType: 'application/json',
        body: JSON.stringify({ success: false,
                               message: 'stub: field "x" is wrong' }),
      });
    });
    await page.goto(hub.base + '/');
    await page.click('#new-model-open');
    await page.waitForSelector('#new-model-form[data-ready]',
                               { timeout: 10000 });
    check((await page.isHidden('#nm-owner-field')) === !c.select,
          'new model form, ' + c.what + ': ' +
          (c.select ? 'an owner select' : 'no owner select'));
    if (c.select) await page.selectOption('#nm-owner', c.sends);
    await page.fill('#nm-name', 'browser-stub');
    await page.fill('#nm-arch', 'yolo11n');
    await page.fill('#nm-epochs', '2');
    await page.click('#nm-submit');
    await page.waitForSelector('#nm-error:not([hidden])', { timeout: 10000 });
    check(sent !== null && sent.owner === c.sends &&
          sent.name === 'browser-stub' && sent.architecture === 'yolo11n' &&
          sent.epochs === 2 && !('dataset' in sent) && !('imgsz' in sent),
          'new model form, ' + c.what + ': sends ' +
          (c.sends ? 'owner ' + c.sends : 'no owner') + ', the fields ' +
          'filled in (numbers as numbers) and nothing else',
          JSON.stringify(sent));
    check((await page.textContent('#nm-error')).includes(
      'stub: field "x" is wrong'),
    'new model form, ' + c.what + ': shows the hub\'s message');
    await page.close();
  }
}

/* Datasets and the "New model" form. */
async function datasets(ctx, hub, shots) {
  const DS_NAME = 'Browser Fashion 2k';
  const ZIP_NAME = 'browser-fashion.zip';
  const zip = datasetZip();
  const zipSha = sha256(zip);
  const dsid = (await call(hub, 'POST', '/v1/datasets',
                           { meta: { name: DS_NAME } })).id;
  check(/^[A-Za-z0-9]{20}$/.test(dsid || ''),
        'API: POST /v1/datasets answers a 20-character id', dsid);
  const fresh = await call(hub, 'GET', '/v1/datasets/' + dsid);
  check(fresh.status === 'new' && fresh.name === DS_NAME && !fresh.url,
        'API: a dataset without its file is new, with no url',
        JSON.stringify(fresh));

  /* Its page before the upload says so, and turns ready by itself. */
  const page = await ctx.newPage();
  await page.goto(hub.base + '/datasets/' + dsid);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
  check(await page.getAttribute('#status [data-status]', 'data-status') ===
        'new', 'dataset page: new before its upload');
  const help = await page.textContent('#upload-help');
  check(!(await page.isHidden('#upload-help')) &&
        help.includes('/v1/datasets/' + dsid + '/upload'),
        'dataset page: says how to upload its zip', JSON.stringify(help));

  const up = await uploadDataset(hub, dsid, ZIP_NAME, zip);
  check(up && up.size === zip.length && up.sha256 === zipSha &&
        up.files === 5,
        'API: the upload answers size ' + zip.length + ', its SHA-256 and ' +
        '5 files', JSON.stringify(up));
  const ds = await call(hub, 'GET', '/v1/datasets/' + dsid);
  check(ds.status === 'ready' && ds.size === zip.length &&
        ds.sha256 === zipSha && ds.filename === ZIP_NAME && ds.files === 5,
        'API: the dataset is ready with size, sha256, filename, files',
        JSON.stringify(ds));
  check(isDatasetDownload(ds.url, dsid, zipSha),
        'API: its url is /v1/datasets/' + dsid + '/download/SHA256/...', ds.url);

  try {
    await page.waitForSelector('#status [data-status="ready"]',
                               { timeout: 10000 });
  } catch (e) {
    /* reported just below */
  }
  check(await page.getAttribute('#status [data-status]', 'data-status') ===
        'ready', 'dataset page: turns ready by itself after the upload');
  check(await page.isHidden('#upload-help'),
        'dataset page: the upload help is gone once ready');
  check((await page.textContent('#name')) === DS_NAME,
        'dataset page: shows the name');
  const size = await page.textContent('#ds-size');
  check(size.includes(fmtBytes(zip.length)),
        'dataset page: size in human units (' + fmtBytes(zip.length) + ')',
        size);
  check((await page.textContent('#ds-sha256')) === zipSha,
        'dataset page: the full SHA-256');
  check((await page.textContent('#ds-filename')) === ZIP_NAME,
        'dataset page: the file name as uploaded');
  check((await page.textContent('#ds-files')).trim() === '5',
        'dataset page: 5 entries');
  const dl = await page.$eval('#ds-download', async (a) => {
    const res = await fetch(a.href, { credentials: 'same-origin' });
    const d = await crypto.subtle.digest('SHA-256', await res.arrayBuffer());
    return { href: a.href, status: res.status,
             sha: [...new Uint8Array(d)]
               .map((b) => b.toString(16).padStart(2, '0')).join('') };
  });
  check(isDatasetDownload(dl.href, dsid, zipSha),
        'dataset page: the download link is the dataset\'s url', dl.href);
  check(dl.status === 200 && dl.sha === zipSha,
        'dataset page: the download link gives the uploaded zip',
        'status ' + dl.status + ', sha256 ' + dl.sha);
  check(!(await page.isHidden('#no-models')),
        'dataset page: no models trained on it yet');

  /* The list. */
  await page.goto(hub.base + '/datasets');
  const row = await page.waitForSelector('tr[data-dataset-id="' + dsid + '"]',
                                         { timeout: 10000 });
  const rowText = await row.textContent();
  check(rowText.includes(DS_NAME) && /ready/.test(rowText) &&
        rowText.includes(fmtBytes(zip.length)),
        'datasets list: name, ready and the size', rowText);
  check((await row.$eval('td.files', (td) => td.textContent)) === '5',
        'datasets list: 5 files');
  check(await row.$('a[href="/datasets/' + dsid + '"]') !== null,
        'datasets list: the name links to the dataset page');
  const listDl = await row.$eval('a.download', (a) => a.href);
  check(isDatasetDownload(listDl, dsid, zipSha),
        'datasets list: a download link to the zip', listDl);
  await page.screenshot({ path: path.join(shots, 'browser-datasets.png'),
                          fullPage: true });

  /* The form: an owner select exactly when /ui/owners leaves a choice (on
   * this loopback hub /ui ignores the cookie, so both keys' owners are
   * offered); the dataset is offered. */
  await page.goto(hub.base + '/');
  await page.click('#new-model-open');
  await page.waitForSelector('#new-model-form[data-ready]', { timeout: 10000 });
  const ownersNow = await page.evaluate(async () =>
    (await (await fetch('/ui/owners')).json()).data);
  const choice = !ownersNow.you && ownersNow.owners.length > 1;
  check((await page.isHidden('#nm-owner-field')) === !choice,
        'new model form: an owner select exactly when there is a choice',
        JSON.stringify(ownersNow));
  if (choice) await page.selectOption('#nm-owner', 'browser');
  check(await page.$('#nm-dataset option[value="' + dsid + '"]') !== null,
        'new model form: the dataset is offered');
  const FORM_MODEL = 'browser-form-model';
  await page.fill('#nm-name', FORM_MODEL);
  await page.selectOption('#nm-dataset', dsid);
  await page.fill('#nm-arch', 'yolo11n.pt');
  await page.fill('#nm-epochs', '3');
  await page.fill('#nm-imgsz', '64');
  await page.fill('#nm-batch', '8');
  await page.fill('#nm-patience', '5');
  await page.click('#nm-submit');
  try {
    await page.waitForSelector('#new-model-result:not([hidden])',
                               { timeout: 10000 });
  } catch (e) {
    const err = await page.isHidden('#nm-error') ? ''
                : await page.textContent('#nm-error');
    throw new Error('the New model form showed no result' +
                    (err ? '; it says: ' + err : ''));
  }
  const mid = await page.getAttribute('#new-model-result', 'data-model-id');
  const modelUrl = hub.base + '/models/' + mid;
  check(/^[A-Za-z0-9]{20}$/.test(mid || ''),
        'new model form: created a model', mid);
  check(await page.getAttribute('#nm-link', 'href') === modelUrl &&
        (await page.textContent('#nm-link')) === modelUrl,
        'new model form: links to ' + modelUrl,
        await page.getAttribute('#nm-link', 'href'));
  const commands = await page.textContent('#nm-commands');
  const lines = commands.split('\n').filter((l) => l.trim() !== '');
  check(lines.length === 2, 'new model form: shows two command lines',
        JSON.stringify(commands));
  check(commands.includes(modelUrl),
        'new model form: the commands name the model URL',
        JSON.stringify(commands));
  console.log('# commands shown:\n#   ' + lines.join('\n#   '));
  check(await page.isHidden('#new-model'),
        'new model form: closes once the model is created');
  await page.waitForSelector('tr[data-model-id="' + mid + '"]',
                             { timeout: 10000 });
  const mrow = await page.$('tr[data-model-id="' + mid + '"]');
  check((await mrow.textContent()).includes(FORM_MODEL),
        'new model form: the list shows the new model at once');
  check(await mrow.$('td.data a[href="/datasets/' + dsid + '"]') !== null,
        'list: the new model\'s data links to its dataset');
  await page.screenshot({ path: path.join(shots, 'browser-new-model.png'),
                          fullPage: true });

  const m = await call(hub, 'GET', '/v1/models/' + mid);
  check(isDatasetDownload(m.data, dsid),
        'API: the model\'s data is a URL under /v1/datasets/' + dsid +
        '/download/', m.data);
  check(m.train_args && m.train_args.data === m.data,
        'API: train_args.data is the same URL',
        JSON.stringify(m.train_args));
  check(m.meta && m.meta.name === FORM_MODEL && m.epochs === 3 &&
        m.imgsz === 64 && m.batch_size === 8 && m.patience === 5,
        'API: the model has the form\'s name, epochs, imgsz, batch, patience',
        JSON.stringify({ meta: m.meta, epochs: m.epochs, imgsz: m.imgsz,
                         batch_size: m.batch_size, patience: m.patience }));
  check(typeof m.cfg === 'string' && m.cfg.startsWith('yolo11n'),
        'API: the model\'s architecture is yolo11n', m.cfg);
  console.log('# the form\'s model: cfg ' + m.cfg + ', is_pretrained ' +
              m.is_pretrained + ', parent ' + JSON.stringify(m.parent));

  /* A dataset deleted between choosing it and sending the form: the
   * hub's message is shown and the form stays open. */
  const doomed = (await call(hub, 'POST', '/v1/datasets',
                             { meta: { name: 'browser-doomed' } })).id;
  await page.click('#new-model-open');
  await page.waitForSelector('#new-model-form[data-ready]', { timeout: 10000 });
  await page.fill('#nm-name', 'browser-never');
  await page.fill('#nm-arch', 'yolo11n');
  if (choice) await page.selectOption('#nm-owner', 'browser');
  await page.selectOption('#nm-dataset', doomed);
  await call(hub, 'DELETE', '/v1/datasets/' + doomed + '?hard=true');
  await page.click('#nm-submit');
  await page.waitForSelector('#nm-error:not([hidden])', { timeout: 10000 });
  const formErr = await page.textContent('#nm-error');
  check(/dataset/.test(formErr) && !(await page.isHidden('#new-model')),
        'new model form: a dataset gone shows the hub\'s message', formErr);
  const direct = await fetch(hub.base + '/ui/models', {
    method: 'POST',
    /* As the hub's own page sends it: JSON, from its origin. */
    headers: { 'content-type': 'application/json', origin: hub.base },
    body: JSON.stringify({ owner: 'browser', name: 'browser-never',
                           architecture: 'yolo11n', dataset: doomed }),
  });
  const directBody = await direct.json().catch(() => null);
  check(direct.status === 400 && directBody &&
        formErr.includes(directBody.message),
        'API: that answer is 400 and the form shows its message',
        direct.status + ' ' + JSON.stringify(directBody));

  await ownerCases(ctx, hub);

  /* The dataset page lists the model and offers the form for it. */
  await page.goto(hub.base + '/datasets/' + dsid);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
  const trained = await page.$('#models tr[data-model-id="' + mid + '"]');
  check(trained !== null &&
        await trained.$('a[href="/models/' + mid + '"]') !== null &&
        (await trained.textContent()).includes(FORM_MODEL),
        'dataset page: lists the model created from it, linked');
  await page.screenshot({ path: path.join(shots, 'browser-dataset.png'),
                          fullPage: true });
  await page.click('#new-model-link');
  await page.waitForSelector('#new-model-form[data-ready]', { timeout: 10000 });
  check(await page.$eval('#nm-dataset', (s) => s.value) === dsid,
        'dataset page: "New model from it" opens the form with it chosen');

  /* The model's page links its data to the dataset. */
  await openModel(page, hub, mid);
  check(await page.$('#config a[href="/datasets/' + dsid + '"]') !== null,
        'model page: its data links to the dataset page');
  await page.close();
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
  for (const [next, want] of [[back, back], ['//example.invalid/x', '/'],
                              ['/\t/example.invalid/x', '/'],
                              ['/\\example.invalid/x', '/'],
                              ['/%2F/example.invalid', '/%2F/example.invalid'],
                              ['https://example.invalid/', '/']]) {
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

/* A hub that asks for a login even on loopback (--pages-login): signing in
 * gives a session cookie (HttpOnly, not the key), the pages work with it,
 * signing out ends the session for whoever kept a copy of the cookie, and
 * every page carries the headers that keep other sites out. */
async function sessionRun(ctx, hub) {
  const page = await ctx.newPage();
  const first = await page.goto(hub.base + '/');
  const h = first.headers();
  check(/default-src 'self'/.test(h['content-security-policy'] || '') &&
        /frame-ancestors 'none'/.test(h['content-security-policy'] || '') &&
        h['x-content-type-options'] === 'nosniff' &&
        h['x-frame-options'] === 'DENY' &&
        h['referrer-policy'] === 'same-origin',
        'headers: a page carries its CSP, nosniff, no framing, referrer policy',
        JSON.stringify(h));
  try {
    await page.waitForURL(/\/login/, { timeout: 10000 });
  } catch (e) {
    /* reported just below */
  }
  check(page.url().startsWith(hub.base + '/login'),
        'session: a page without a session is sent to /login', page.url());
  await page.fill('#key', hub.key);
  await page.click('#login button');
  try {
    await page.waitForURL(hub.base + '/', { timeout: 10000 });
  } catch (e) {
    /* reported just below */
  }
  check(page.url() === hub.base + '/', 'session: signing in leads back',
        page.url());
  const cookies = await ctx.cookies(hub.base);
  const session = cookies.find((c) => c.name === 'chub_session');
  check(session && session.httpOnly && session.sameSite === 'Strict' &&
        /^[0-9a-f]{64}$/.test(session.value) && session.value !== hub.key &&
        !cookies.some((c) => c.value.includes(hub.key)),
        'session: the cookie is an HttpOnly, SameSite=Strict token, never ' +
        'the key', JSON.stringify(cookies));
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 })
      .catch(() => {});
  const listed = await fetch(hub.base + '/ui/models', {
    headers: { cookie: 'chub_session=' + (session ? session.value : '') },
  });
  check(listed.status === 200, 'session: the token reads the hub',
        String(listed.status));
  await page.click('#logout');
  try {
    await page.waitForURL(/\/login/, { timeout: 10000 });
  } catch (e) {
    /* reported just below */
  }
  const after = await fetch(hub.base + '/ui/models', {
    headers: { cookie: 'chub_session=' + (session ? session.value : '') },
  });
  check(after.status === 401,
        'session: after signing out, a kept copy of the cookie is refused',
        String(after.status));
  await page.close();
}

/* The pages over HTTPS (chubd --tls-cert/--tls-key, a throwaway
 * certificate the browser is told to accept): they load, sign in, and the
 * session cookie is Secure. */
async function tlsRun(ctx, hubs) {
  const dir = tmpDir('tls');
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
  ], { encoding: 'utf8', timeout: 30000 });
  if (made.status !== 0) throw new Error('openssl: ' + made.stderr);
  const hub = await startChubd(['--pages-login',
                                '--tls-cert', path.join(dir, 'cert.pem'),
                                '--tls-key', path.join(dir, 'key.pem')]);
  hubs.add(hub.base);
  try {
    const page = await ctx.newPage();
    await page.goto(hub.base + '/login');
    await page.fill('#key', hub.key);
    await page.click('#login button');
    try {
      await page.waitForURL(hub.base + '/', { timeout: 10000 });
    } catch (e) {
      /* reported just below */
    }
    check(page.url() === hub.base + '/', 'tls: the pages sign in over HTTPS',
          page.url());
    const cookie = (await ctx.cookies(hub.base))
        .find((c) => c.name === 'chub_session');
    check(cookie && cookie.secure && cookie.httpOnly,
          'tls: the session cookie is Secure and HttpOnly',
          JSON.stringify(cookie));
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 })
        .catch(() => {});
    check(await page.$('#models') !== null,
          'tls: the model list renders over HTTPS');
    await page.close();
  } finally {
    await hub.stop();
  }
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
  const proc = t.spawnOwned(args.trainer, ['--limit', '600', '--epochs',
                                           String(epochs), '--out', out],
                            { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  let code = null;
  proc.on('exit', (c, s) => {
    code = s || c;
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
  /* libchub's heartbeats carry the machine's load: a RAM chart by time. */
  const loadPoints = await waitFor('the load chart', async () =>
    Number(await page.getAttribute('[data-system="ram"]', 'data-points')
      .catch(() => 0))).catch(() => 0);
  check(loadPoints >= 1, 'trainer run: the machine load from libchub\'s ' +
                         'heartbeats is drawn', String(loadPoints));
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
  const hub = await startChubd();
  let ctx = null;
  try {
    /* --ignore-certificate-errors: the TLS hub's throwaway certificate
     * (tlsRun). */
    ctx = await t.launch(args.modules, {
      args: ['--ignore-certificate-errors'] });
    const { errors, offsite, hubs } = ctx;
    /* Nothing but the hub on loopback: a page that reached for a CDN or a
     * web font would show in offsite. */
    hubs.add(hub.base);

    await freshHub(ctx, hub);
    await login(ctx, hub);
    const locked = await startChubd(['--pages-login']);
    hubs.add(locked.base);
    try {
      await sessionRun(ctx, locked);
    } finally {
      await locked.stop();
    }
    await tlsRun(ctx, hubs);
    await seededRun(ctx, hub, args.shots);
    await datasets(ctx, hub, args.shots);
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

t.run(main);
