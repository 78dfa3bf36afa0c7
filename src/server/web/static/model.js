/*
 * model.js - the page of one model at /models/{id}: status, progress, one
 * uPlot chart per metric against epoch, checkpoints with download links,
 * configuration and the training agent; run.js adds what follows the run
 * itself (stop, console, machine load, plots).
 *
 * While the run may still change (new, training, disconnected) it polls the
 * model and its metrics every 2 s and updates each chart in place with
 * setData, so a page left open follows the run without flicker. Every chart's
 * card carries data-metric="NAME" and data-points="N" (the number of epochs
 * that reported that metric) so that what is drawn can be checked from
 * outside.
 */
'use strict';

(() => {
  const { api, h, timeEl, refreshTimes, fmtBytes, fmtNum, statusBadge,
          isLive, headline } = chub;
  const POLL_MS = 2000;
  const CHART_HEIGHT = 220;

  /* Charts are grouped by the metric name's prefix; model/* is facts about
   * the network (parameters, GFLOPs, speed) and goes in a table instead. */
  const GROUPS = [
    { prefix: 'train/', title: 'Training', color: '#1f4fd1' },
    { prefix: 'val/', title: 'Validation', color: '#c2410c' },
    { prefix: 'metrics/', title: 'Evaluation', color: '#15803d' },
    { prefix: '', title: 'Other', color: '#7c3aed' },
  ];
  const INFO_PREFIX = 'model/';

  const id = chub.modelIdFromPath();
  const $ = (sel) => document.getElementById(sel);
  const charts = new Map(); /* metric name -> {u, card, body, valueEl, width} */
  let timer = null;

  function groupOf(name) {
    return GROUPS.find((g) => name.startsWith(g.prefix));
  }

  /* ---- header, summary, tables ---------------------------------------- */

  function kvRows(table, pairs) {
    table.replaceChildren(...pairs.map(([k, v]) =>
      h('tr', {}, h('th', {}, k),
        h('td', {}, v === null || v === undefined || v === ''
                        ? h('span', { class: 'muted' }, '—') : v))));
  }

  function epochsDone(m) {
    return typeof m.last_epoch === 'number' ? m.last_epoch + 1 : 0;
  }

  function renderHeader(m) {
    const name = (m.meta && m.meta.name) || m.id;
    document.title = name + ' · chub';
    $('crumb').textContent = name;
    $('name').textContent = name;
    $('status').replaceChildren(statusBadge(m.status));
    $('live').hidden = !isLive(m.status);
    $('subtitle').replaceChildren(
      h('span', { class: 'mono' }, m.id), ' · created ',
      timeEl(m.created_at), ' · updated ', timeEl(m.updated_at));
  }

  function summaryCard(label, value, note, attrs) {
    return h('div', { class: 'card stat', ...(attrs || {}) },
      h('div', { class: 'stat-label' }, label),
      h('div', { class: 'stat-value' }, value),
      note ? h('div', { class: 'stat-note muted small' }, note) : null);
  }

  function renderSummary(m, rows) {
    const done = epochsDone(m);
    const total = typeof m.epochs === 'number' ? m.epochs : null;
    const pct = total ? Math.min(100, Math.round((100 * done) / total)) : 0;
    const hl = headline(rows);
    const agent = m.agent || null;
    const ckpts = m.checkpoints || [];
    const best = ckpts.find((c) => c.is_best || c.type === 'final');
    $('summary').replaceChildren(
      summaryCard('Epochs', total ? done + ' / ' + total : String(done),
        total ? h('span', { class: 'bar' },
                  h('span', { style: 'width:' + pct + '%' })) : null,
        { id: 'epochs', 'data-done': done }),
      summaryCard(hl ? hl.name : 'Headline metric',
        hl ? fmtNum(hl.value) : '—',
        hl ? (hl.best ? 'best, at epoch ' : 'at epoch ') + hl.epoch
           : 'after the first epoch'),
      summaryCard('Last heartbeat',
        agent ? timeEl(agent.last_heartbeat) : '—',
        agent ? agent.name || agent.id : 'no agent yet'),
      summaryCard('Weights',
        ckpts.length ? String(ckpts.length) : 'none yet',
        best ? h('a', { href: best.url, download: '' },
                 'download ' + (best.type === 'final' ? 'final' : 'best'),
                 ' (' + fmtBytes(best.size) + ')')
             : ckpts.length ? 'checkpoints' : null));
  }

  function renderConfig(m) {
    const ta = m.train_args || {};
    const pick = (a, b) => (a !== undefined && a !== null ? a : b);
    kvRows($('config'), [
      ['Epochs', pick(m.epochs, ta.epochs)],
      ['Batch size', pick(m.batch_size, ta.batch)],
      ['Image size', pick(m.imgsz, ta.imgsz)],
      ['Patience', pick(m.patience, ta.patience)],
      ['Device', pick(m.device, ta.device)],
      ['Cache', pick(m.cache, ta.cache)],
      ['Data', pick(m.data, ta.data)],
      ['Architecture', m.cfg],
    ].map(([k, v]) => [k, v === undefined || v === null ? null
      /* A dataset of this hub links to its page, not its long signed URL. */
      : k === 'Data' ? chub.dataEl(v) : String(v)]));
  }

  function renderAgent(m) {
    const a = m.agent;
    if (!a) {
      kvRows($('agent'), [['Agent', 'none has reported yet']]);
      return;
    }
    kvRows($('agent'), [
      ['Name', a.name],
      ['Id', a.id ? h('span', { class: 'mono' }, a.id) : null],
      ['Last heartbeat', timeEl(a.last_heartbeat)],
    ]);
  }

  function renderModelInfo(rows) {
    const info = new Map();
    for (const r of rows) {
      for (const [k, v] of Object.entries(r.metrics || {})) {
        if (k.startsWith(INFO_PREFIX)) info.set(k, v);
      }
    }
    $('model-info-section').hidden = info.size === 0;
    kvRows($('model-info'), [...info].map(([k, v]) =>
      [k.slice(INFO_PREFIX.length),
       typeof v === 'number' ? fmtNum(v) : String(v)]));
  }

  function renderCheckpoints(m) {
    const ckpts = m.checkpoints || [];
    if (!ckpts.length) {
      $('checkpoints').replaceChildren(h('div', { class: 'card empty' },
        h('p', {}, 'No checkpoints yet. They appear as the trainer saves ' +
                   'weights.')));
      return;
    }
    const rows = ckpts.map((c) =>
      h('tr', { 'data-sha256': c.sha256 },
        h('td', { class: 'num' }, c.epoch === undefined ? '—' : c.epoch),
        h('td', {}, h('span', { class: 'tag tag-' + c.type }, c.type)),
        h('td', {}, c.is_best ? h('span', { class: 'best', title: 'best' },
                                  '★ best') : ''),
        h('td', { class: 'num' }, fmtBytes(c.size)),
        h('td', { class: 'mono hide-narrow', title: c.sha256 },
          (c.sha256 || '').slice(0, 12)),
        h('td', {}, timeEl(c.created_at)),
        h('td', {}, h('a', { class: 'download', href: c.url, download: '' },
                      'download'))));
    $('checkpoints').replaceChildren(h('div', { class: 'card table-wrap' },
      h('table', { class: 'checkpoints' },
        h('thead', {}, h('tr', {},
          h('th', {}, 'Epoch'), h('th', {}, 'Type'), h('th', {}, 'Best'),
          h('th', {}, 'Size'), h('th', { class: 'hide-narrow' }, 'SHA-256'),
          h('th', {}, 'Created'), h('th', {}, ''))),
        h('tbody', {}, rows))));
  }

  /* ---- charts --------------------------------------------------------- */

  /* Columns for uPlot: x = every epoch seen, y = that epoch's value or
   * null (a metric may start later, e.g. validation every few epochs). */
  function seriesOf(rows, name) {
    const xs = [];
    const ys = [];
    let points = 0;
    for (const r of rows) {
      const v = r.metrics ? r.metrics[name] : undefined;
      const ok = typeof v === 'number' && Number.isFinite(v);
      xs.push(r.epoch);
      ys.push(ok ? v : null);
      if (ok) points++;
    }
    return { data: [xs, ys], points };
  }

  function chartNames(rows) {
    const names = [];
    const seen = new Set();
    for (const r of rows) {
      for (const [k, v] of Object.entries(r.metrics || {})) {
        if (seen.has(k) || k.startsWith(INFO_PREFIX)) continue;
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        seen.add(k);
        names.push(k);
      }
    }
    return names;
  }

  function chartOptions(name, g, width, valueEl) {
    return {
      width,
      height: CHART_HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: chub.epochScales(),
      axes: chub.epochAxes(),
      series: [
        { label: 'epoch' },
        {
          label: name,
          stroke: g.color,
          width: 2,
          fill: g.color + '14',
          spanGaps: true,
          /* uPlot draws the points only while they have room: every epoch
           * of a short run, a clean line for a long one. */
          points: { size: 5, fill: '#fff' },
        },
      ],
      hooks: {
        setCursor: [(u) => {
          const i = u.cursor.idx;
          showValue(valueEl, u, i === null || i === undefined ? null : i);
        }],
      },
    };
  }

  /* The value shown beside a chart's title: the hovered epoch's, else the
   * last one, with the best value for metrics where higher is better. */
  function showValue(el, u, idx) {
    const xs = u.data[0];
    const ys = u.data[1];
    if (idx === null) {
      /* What a screen reader says for the chart. */
      const n = ys.filter((v) => v !== null).length;
      u.root.parentNode.setAttribute('aria-label', u.series[1].label +
        ' over ' + n + (n === 1 ? ' epoch' : ' epochs'));
    }
    let i = idx;
    if (i === null) {
      for (i = ys.length - 1; i >= 0 && ys[i] === null; i--) {
        /* walk back to the last reported value */
      }
    }
    if (i === null || i < 0 || ys[i] === null || ys[i] === undefined) {
      el.textContent = '';
      return;
    }
    el.textContent = (idx === null ? 'last ' : 'epoch ' + xs[i] + ': ') +
                     fmtNum(ys[i]);
  }

  function makeChart(name, series) {
    const g = groupOf(name);
    const valueEl = h('span', { class: 'chart-value num' });
    const body = h('div', { class: 'chart-body', role: 'img' });
    const card = h('div', { class: 'card chart', 'data-metric': name,
                            'data-points': series.points },
      h('div', { class: 'chart-head' },
        h('h4', { class: 'chart-title', title: name }, name), valueEl),
      body);
    chub.chartGroup($('charts'), GROUPS, g).append(card);
    const width = Math.max(200, body.clientWidth);
    const u = new uPlot(chartOptions(name, g, width, valueEl), series.data,
                        body);
    const entry = { u, card, body, valueEl, width };
    /* Follow the card's width (window resizes, phone rotation). */
    new ResizeObserver(() => {
      const w = Math.max(200, body.clientWidth);
      if (w !== entry.width) {
        entry.width = w;
        u.setSize({ width: w, height: CHART_HEIGHT });
      }
    }).observe(body);
    showValue(valueEl, u, null);
    return entry;
  }

  function renderCharts(rows) {
    const names = chartNames(rows);
    $('no-metrics').hidden = names.length > 0;
    for (const name of names) {
      const s = seriesOf(rows, name);
      const c = charts.get(name);
      if (!c) {
        charts.set(name, makeChart(name, s));
      } else {
        c.u.setData(s.data);
        c.card.dataset.points = String(s.points);
        showValue(c.valueEl, c.u, null);
      }
    }
    /* A group with one chart takes half the width, so that e.g. train/loss
     * and val/loss sit side by side instead of each leaving a gap; three
     * charts (box, cls, dfl losses) share one row. */
    for (const sec of $('charts').children) {
      const n = sec.querySelectorAll('[data-metric]').length;
      sec.classList.toggle('chart-group-single', n === 1);
      sec.classList.toggle('chart-group-three', n === 3);
    }
  }

  /* ---- loading and polling -------------------------------------------- */

  function showNotFound() {
    $('loading').hidden = true;
    $('model').hidden = true;
    $('notfound-id').textContent = id || window.location.pathname;
    $('notfound').hidden = false;
    $('crumb').textContent = 'not found';
    document.title = 'Model not found · chub';
  }

  async function load() {
    const base = '/ui/models/' + encodeURIComponent(id);
    /* No more points per metric than a chart has pixels: the hub keeps
     * each bucket's lowest and highest value, first and last epoch. */
    const px = Math.round(window.innerWidth * (window.devicePixelRatio || 1));
    const points = Math.min(10000, Math.max(200, px));
    const [model, rows] = await Promise.all([api(base),
      api(base + '/metrics?points=' + points)]);
    return { model, rows: (rows || []).slice().sort((a, b) =>
      a.epoch - b.epoch) };
  }

  async function tick() {
    let live = true;
    try {
      const { model, rows } = await load();
      live = isLive(model.status);
      $('loading').hidden = true;
      $('error').hidden = true;
      $('model').hidden = false;
      renderHeader(model);
      renderSummary(model, rows);
      renderCharts(rows);
      renderCheckpoints(model);
      renderConfig(model);
      renderAgent(model);
      renderModelInfo(rows);
      await chubRun.refresh(model);
      document.body.dataset.loaded = 'true';
    } catch (e) {
      if (e.status === 404) {
        showNotFound();
        document.body.dataset.loaded = 'true';
        return;
      }
      $('loading').hidden = true;
      $('error').textContent = 'Could not load this model: ' + e.message +
                               '. Retrying…';
      $('error').hidden = false;
    }
    clearTimeout(timer);
    if (live) timer = setTimeout(tick, POLL_MS);
  }

  if (!id) {
    showNotFound();
  } else {
    chubRun.start(id);
    tick();
  }
  setInterval(() => refreshTimes(), 10000);
})();
