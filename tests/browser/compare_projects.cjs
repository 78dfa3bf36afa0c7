/*
 * compare_projects.cjs - runs grouped by project on the model list, and
 * several runs on one chart, in Debian's Chromium (through playwright-core)
 * against the real chubd:
 *
 *   - three Ultralytics Platform runs are played through the real webhooks
 *     (training_started, then an epoch_end per epoch), two under one
 *     project and one under another, and one model is made through HUB's
 *     API (its name holds HTML, which must show as text);
 *   - the API gives each run's model its project and the HUB model none;
 *   - / shows a heading per project, linked to /?project=ID, with exactly
 *     its runs, and the HUB model under "No project", after the projects;
 *   - the project's link lists exactly its two runs;
 *   - ticking both there enables Compare, which opens /compare?ids=A,B:
 *     one chart per metric the runs reported (model/* aside), each drawing
 *     both runs (uPlot's legend names them by model name), the final values
 *     of both in the table, the best marked (higher for metrics/*, lower
 *     for losses), and the configuration row that differs highlighted;
 *   - an unknown id among the ids is named in a message of its own while
 *     the others are compared (a chart only one run reported draws one
 *     line); more than 8 runs ticked on the list leave Compare disabled
 *     with a message, and more than 8 ids get a message instead of charts.
 *
 *   node compare_projects.cjs --chubd BIN --modules DIR --shots DIR
 *
 * The chubd it starts is killed by PID on every exit path. Every wait is
 * bounded. Screenshots: DIR/browser-projects.png (the grouped list) and
 * DIR/browser-compare.png (the comparison).
 */
'use strict';

const path = require('path');
const t = require('./harness.cjs');

const { check, waitFor, call } = t;
const args = t.parseArgs(process.argv.slice(2), ['chubd', 'modules', 'shots']);

/* ---- runs through the real HTTP API -------------------------------------- */

/* Ultralytics Platform's webhook, as ultralytics 8.4 sends it. */
async function platform(hub, body) {
  return t.webhook(hub, '/training/metrics', body);
}

/* A Platform run: training_started, then epoch_end per epoch with the
 * metrics `at(epoch)` gives (modelInfo at epoch 0). Returns the model id. */
async function platformRun(hub, project, name, batch, epochs, at) {
  const started = await platform(hub, {
    event: 'training_started', project, name,
    data: {
      trainArgs: { model: 'yolo11n.pt', data: 'coco8.yaml',
                   epochs: String(epochs), batch: String(batch),
                   imgsz: '640', device: 'cpu', project, name },
      epochs, device: 'cpu',
      environment: { ultralytics: '8.4.53', os: 'linux', python: '3.12' },
    },
  });
  const id = started && started.modelId;
  if (!/^[A-Za-z0-9]{20}$/.test(id || '')) {
    throw new Error('training_started answered ' + JSON.stringify(started));
  }
  for (let e = 0; e < epochs; e++) {
    const data = { epoch: e, metrics: at(e),
                   system: { cpu: 20, ram: 40, gpus: [] },
                   fitness: 0.1 * e, best_fitness: 0.1 * e };
    if (e === 0) {
      data.modelInfo = { parameters: 2590620, gflops: 6.4, speedMs: 1.7 };
    }
    const answer = await platform(hub, { event: 'epoch_end', project, name,
                                         modelId: id, data });
    if (!answer || answer.cancelled !== false) {
      throw new Error('epoch_end answered ' + JSON.stringify(answer));
    }
  }
  return id;
}

/* A model made through HUB's API, with metrics, as libchub reports. */
async function hubModel(hub, name, epochs) {
  const { id } = await call(hub, 'POST', '/v1/models', {
    config: { batchSize: 8, epochs, imageSize: 28, patience: 5,
              device: 'cpu' },
    dataset: { name: 'fashion-mnist' },
    lineage: { architecture: { name: 'mlp-256' } },
    meta: { name },
  });
  const metrics = {};
  for (let e = 0; e < epochs; e++) {
    metrics[String(e)] = JSON.stringify({
      'train/box_loss': 2 - 0.1 * e,
      'metrics/mAP50-95(B)': 0.1 + 0.01 * e,
      'metrics/accuracy_top1': 0.5 + 0.1 * e,
    });
  }
  await call(hub, 'POST', '/v1/models/' + id, { type: 'metrics', metrics });
  return id;
}

/* The same as common.js's fmtNum, to know what the page should say. */
function fmtNum(v) {
  if (Number.isInteger(v) && Math.abs(v) >= 1000) {
    return v.toLocaleString('en-US');
  }
  if (Math.abs(v) >= 10000) return Math.round(v).toLocaleString('en-US');
  return String(Number(v.toPrecision(4)));
}

/* Each metric's last value in a run's metrics as the API gives them. */
async function lastValues(hub, id) {
  const rows = await call(hub, 'GET', '/v1/models/' + id + '/metrics');
  const last = new Map();
  for (const r of rows.slice().sort((a, b) => a.epoch - b.epoch)) {
    for (const [k, v] of Object.entries(r.metrics || {})) {
      if (typeof v === 'number') last.set(k, v);
    }
  }
  return last;
}

/* ---- what the pages show -------------------------------------------------- */

/* The model list's groups: [{project, title, link, ids}], in page order. */
function listGroups(page) {
  return page.$$eval('section.project-group', (secs) => secs.map((s) => {
    const a = s.querySelector('.group-title a.project-link');
    return {
      project: s.getAttribute('data-project-id'),
      title: s.querySelector('.group-title').textContent,
      link: a ? a.getAttribute('href') : null,
      linkText: a ? a.textContent : null,
      ids: [...s.querySelectorAll('tr[data-model-id]')]
        .map((tr) => tr.getAttribute('data-model-id')),
    };
  }));
}

/* Every chart of the compare page: its metric, data-series, the runs its
 * uPlot legend names (the x series, "epoch", left out) and whether it drew
 * a canvas. */
function compareCharts(page) {
  return page.$$eval('#charts [data-metric]', (cards) => cards.map((c) => ({
    metric: c.getAttribute('data-metric'),
    series: Number(c.getAttribute('data-series')),
    legend: [...c.querySelectorAll('.u-legend .u-series .u-label')]
      .map((l) => l.textContent).filter((t) => t !== 'epoch'),
    canvas: c.querySelector('canvas') !== null,
  })));
}

async function openCompare(page, url) {
  await page.goto(url);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
}

const same = (a, b) => a.length === b.length &&
  [...a].sort().every((x, i) => x === [...b].sort()[i]);

/* ---- the scenario --------------------------------------------------------- */

async function scenario(ctx, hub) {
  const PROJECT = 'vision-exp';
  const E = 5;
  /* Run B ends better on mAP, run A lower on box loss. */
  const a = await platformRun(hub, PROJECT, 'train', 16, E, (e) => ({
    'train/box_loss': 1.2 - 0.15 * e,
    'val/box_loss': 1.4 - 0.1 * e,
    'metrics/mAP50-95(B)': 0.2 + 0.04 * e,
    lr: { pg0: 0.01 },
  }));
  const b = await platformRun(hub, PROJECT, 'train2', 32, E, (e) => ({
    'train/box_loss': 1.3 - 0.12 * e,
    'val/box_loss': 1.5 - 0.1 * e,
    'metrics/mAP50-95(B)': 0.25 + 0.05 * e,
    lr: { pg0: 0.02 },
  }));
  const c = await platformRun(hub, 'other-exp', 'train', 16, 2, (e) => ({
    'train/box_loss': 1 - 0.1 * e,
  }));
  const HUB_NAME = 'hub <b>baseline</b>';
  const hubId = await hubModel(hub, HUB_NAME, 3);

  /* The API: each run's model names its project, the HUB model none. */
  const ma = await call(hub, 'GET', '/v1/models/' + a);
  const mh = await call(hub, 'GET', '/v1/models/' + hubId);
  const pid = ma.project && ma.project.id;
  check(pid && ma.project.name === PROJECT,
        'API: a Platform run\'s model has its project', JSON.stringify(ma.project));
  check(mh.project === null, 'API: a HUB model\'s project is null',
        JSON.stringify(mh.project));
  const other = (await call(hub, 'GET', '/v1/models/' + c)).project;

  /* The model list, grouped. */
  const page = await ctx.newPage();
  await page.goto(hub.base + '/');
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
  /* Not fatal: a list without groups fails the checks below, by name. */
  await page.waitForSelector('section.project-group', { timeout: 10000 })
      .catch(() => {});
  const groups = await listGroups(page);
  const g = groups.find((x) => x.project === pid);
  check(g && g.linkText === PROJECT && g.link === '/?project=' + pid &&
        same(g.ids, [a, b]),
        'list: a heading "' + PROJECT + '" linked to /?project=ID over ' +
        'exactly its two runs', JSON.stringify(groups));
  const go = groups.find((x) => other && x.project === other.id);
  check(go && go.linkText === 'other-exp' && same(go.ids, [c]),
        'list: the other project has its own heading and run',
        JSON.stringify(groups));
  const none = groups[groups.length - 1];
  check(none && none.project === '' && /No project/.test(none.title) &&
        same(none.ids, [hubId]),
        'list: the HUB model is under "No project", after the projects',
        JSON.stringify(groups));
  check(groups.length === 3, 'list: three groups (two projects, no project)',
        String(groups.length));
  const hubRow = await page.$('tr[data-model-id="' + hubId + '"] td.name');
  check(hubRow && (await hubRow.textContent()).includes(HUB_NAME) &&
        (await hubRow.$('b')) === null,
        'list: a model name holding HTML is shown as text');
  check(await page.isDisabled('#compare-open'),
        'list: Compare is disabled with nothing ticked');
  await page.check('input.pick[data-model-id="' + a + '"]');
  check(await page.isDisabled('#compare-open'),
        'list: Compare is disabled with one run ticked');
  await page.uncheck('input.pick[data-model-id="' + a + '"]');
  await page.screenshot({ path: path.join(args.shots, 'browser-projects.png'),
                          fullPage: true });

  /* The project's own list. */
  await page.click('a.project-link[data-project-id="' + pid + '"]');
  await page.waitForURL(hub.base + '/?project=' + pid, { timeout: 10000 });
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
  await page.waitForSelector('tr[data-model-id]', { timeout: 10000 });
  const ids = await page.$$eval('tr[data-model-id]', (trs) =>
    trs.map((tr) => tr.getAttribute('data-model-id')));
  check(same(ids, [a, b]), 'project page: lists exactly its two runs',
        JSON.stringify(ids));
  check(!(await page.isHidden('#project-head')) &&
        (await page.textContent('#project-name')) === PROJECT,
        'project page: names the project');

  /* Tick both, Compare. */
  await page.check('input.pick[data-model-id="' + a + '"]');
  await page.check('input.pick[data-model-id="' + b + '"]');
  check(await page.isEnabled('#compare-open'),
        'project page: Compare is enabled with two runs ticked');
  await page.click('#compare-open');
  await page.waitForURL(/\/compare\?ids=/, { timeout: 10000 });
  const url = new URL(page.url());
  check(url.pathname === '/compare' &&
        same(url.searchParams.get('ids').split(','), [a, b]),
        'Compare opens /compare?ids= with both runs', page.url());
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
  await page.waitForFunction(() => {
    const cards = document.querySelectorAll('#charts [data-metric]');
    return cards.length > 0 && [...cards].every((el) =>
      el.querySelector('canvas'));
  }, null, { timeout: 15000 });

  const la = await lastValues(hub, a);
  const lb = await lastValues(hub, b);
  const want = [...new Set([...la.keys(), ...lb.keys()])]
    .filter((k) => !k.startsWith('model/'));
  const charts = await compareCharts(page);
  check(same(charts.map((x) => x.metric), want),
        'compare: one chart per metric (' + want.join(', ') + ')',
        JSON.stringify(charts.map((x) => x.metric)));
  for (const ch of charts) {
    check(ch.series === 2 && same(ch.legend, ['train', 'train2']) &&
          ch.canvas,
          'compare: chart ' + ch.metric + ' draws both runs, named in its ' +
          'legend', JSON.stringify(ch));
  }

  /* The table: both runs' final values, the best marked. */
  const finals = await page.$$eval('#finals tr[data-metric]', (trs) =>
    trs.map((tr) => ({
      metric: tr.getAttribute('data-metric'),
      cells: [...tr.querySelectorAll('td[data-model-id]')].map((td) => ({
        id: td.getAttribute('data-model-id'),
        text: td.textContent,
        best: td.getAttribute('data-best') === 'true',
      })),
    })));
  for (const [metric, wantA, wantB] of [
    ['metrics/mAP50-95(B)', la.get('metrics/mAP50-95(B)'),
     lb.get('metrics/mAP50-95(B)')],
    ['train/box_loss', la.get('train/box_loss'), lb.get('train/box_loss')],
    ['lr/pg0', la.get('lr/pg0'), lb.get('lr/pg0')],
    ['model/parameters', 2590620, 2590620]]) {
    const row = finals.find((r) => r.metric === metric);
    const ca = row && row.cells.find((x) => x.id === a);
    const cb = row && row.cells.find((x) => x.id === b);
    check(ca && cb && ca.text.startsWith(fmtNum(wantA)) &&
          cb.text.startsWith(fmtNum(wantB)),
          'compare table: ' + metric + ' is ' + fmtNum(wantA) + ' and ' +
          fmtNum(wantB), JSON.stringify(row));
  }
  const bestOf = (metric) => {
    const row = finals.find((r) => r.metric === metric);
    return row ? row.cells.filter((x) => x.best).map((x) => x.id) : null;
  };
  check(same(bestOf('metrics/mAP50-95(B)') || [], [b]),
        'compare table: the higher mAP is marked best',
        JSON.stringify(bestOf('metrics/mAP50-95(B)')));
  check(same(bestOf('train/box_loss') || [], [a]),
        'compare table: the lower loss is marked best',
        JSON.stringify(bestOf('train/box_loss')));
  const cfg = await page.$$eval('#config tr[data-key]', (trs) =>
    trs.map((tr) => ({
      key: tr.getAttribute('data-key'),
      differs: tr.getAttribute('data-differs') === 'true',
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent),
    })));
  const batch = cfg.find((r) => r.key === 'batch');
  const imgsz = cfg.find((r) => r.key === 'imgsz');
  check(batch && batch.differs && same(batch.cells, ['16', '32']),
        'compare table: the batch sizes (16, 32) are shown and flagged as ' +
        'differing', JSON.stringify(batch));
  check(imgsz && !imgsz.differs && same(imgsz.cells, ['640', '640']),
        'compare table: the same image size is not flagged',
        JSON.stringify(imgsz));
  await page.screenshot({ path: path.join(args.shots, 'browser-compare.png'),
                          fullPage: true });

  /* An unknown id among them: named, the rest compared. */
  const gone = 'AAAAAAAAAAAAAAAAAAAA';
  await openCompare(page, hub.base + '/compare?ids=' + [a, hubId, gone]
    .join(','));
  const problem = await page.$('#problems [data-missing-id="' + gone + '"]');
  check(problem && !(await page.isHidden('#problems')) &&
        (await problem.textContent()).includes(gone),
        'compare: an unknown id gets a message naming it');
  const mixed = await compareCharts(page);
  const box = mixed.find((x) => x.metric === 'train/box_loss');
  const acc = mixed.find((x) => x.metric === 'metrics/accuracy_top1');
  check(box && box.series === 2 && same(box.legend, ['train', HUB_NAME]),
        'compare: with an unknown id the two known runs are still drawn ' +
        '(a name holding HTML as text in the legend)', JSON.stringify(box));
  check(acc && acc.series === 1 && same(acc.legend, [HUB_NAME]),
        'compare: a metric only one run reported draws that one run',
        JSON.stringify(acc));
  check(await page.$$eval('#compare b, #problems b', (els) => els.length) ===
        0, 'compare: nothing from a model name is parsed as HTML');

  /* More than eight ticked on the list: Compare stays off and says why. */
  for (let i = 0; i < 6; i++) await hubModel(hub, 'extra-' + i, 1);
  await page.goto(hub.base + '/');
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 });
  /* By selector, not by handle: a live list redraws its rows. */
  const boxIds = await page.$$eval('input.pick', (els) =>
    els.map((el) => el.getAttribute('data-model-id')));
  const pick = (id) => 'input.pick[data-model-id="' + id + '"]';
  for (const id of boxIds.slice(0, 9)) await page.check(pick(id));
  check(boxIds.length === 10 && await page.isDisabled('#compare-open') &&
        /at most 8/.test(await page.textContent('#compare-note')),
        'list: with 9 runs ticked Compare is disabled and says at most 8',
        boxIds.length + ' boxes, note ' +
        JSON.stringify(await page.textContent('#compare-note')));
  await page.uncheck(pick(boxIds[0]));
  check(await page.isEnabled('#compare-open'),
        'list: unticking one (8 left) enables Compare');

  /* More than eight in the address. */
  const many = [];
  for (let i = 0; i < 9; i++) many.push(String.fromCharCode(66 + i).repeat(20));
  await openCompare(page, hub.base + '/compare?ids=' + many.join(','));
  check(!(await page.isHidden('#notice')) &&
        /at most 8/.test(await page.textContent('#notice')) &&
        await page.isHidden('#compare'),
        'compare: more than 8 ids get a message, no charts');
  await page.close();
}

t.runPages(args, scenario);
