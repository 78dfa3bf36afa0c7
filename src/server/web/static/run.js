/*
 * run.js - the parts of a model's page that follow the run itself rather
 * than its metrics: the Stop button, the console (live tail, search,
 * download of the whole log), the machine's load (CPU, RAM, GPU use and
 * memory per GPU) and the final plots (confusion matrix as a heat map,
 * PR / F1 / precision / recall curves) with the results.
 *
 * model.js calls chubRun.refresh(model) on each of its polls; this reads
 * GET .../run (what kind of run, stop, results and plots), then only what
 * is new of the console and the load (after the last seq it has), so a page
 * left open for a long run costs a little per poll. Everything a trainer
 * sent is put in the page as text, never parsed as HTML.
 *
 * What is drawn is readable from outside: #console carries data-lines,
 * each load chart data-system and data-points, each plot data-plot.
 */
'use strict';

const chubRun = (() => {
  const { api, h, fmtNum } = chub;
  const CONSOLE_SHOWN = 5000; /* lines in the page; the rest: download */
  const MATCHES_SHOWN = 2000;
  const PAGE_MAX = 50; /* console or load pages read in one refresh */
  const LOAD_HEIGHT = 180;
  const PLOT_HEIGHT = 260;
  const COLORS = ['#1f4fd1', '#c2410c', '#15803d', '#7c3aed', '#0e7490',
                  '#be123c', '#a16207', '#4d7c0f'];

  const $ = (sel) => document.getElementById(sel);
  let id = null;
  let base = null;
  let busy = false;
  let live = false;
  let run = null;
  let confirming = false;

  const cons = { next: 0, lines: [], partial: '', filter: '', shownKey: '' };
  const load = { next: 0, samples: [], charts: new Map() };
  let plotsKey = '';

  /* ---- stop ----------------------------------------------------------- */

  async function askStop() {
    const btn = $('stop-confirm');
    btn.disabled = true;
    try {
      await api(base + '/stop', { method: 'POST' });
      confirming = false;
      run = await api(base + '/run');
    } catch (e) {
      confirming = false;
      renderStop();
      $('stop-error').textContent = 'Could not stop the run: ' + e.message;
      return;
    }
    renderStop();
  }

  let stopKey = '';

  function renderStop() {
    const el = $('run-stop');
    if (!run) return;
    /* Redrawn only when something changed, never under a click. */
    const key = [run.protocol, run.stoppable, run.stopAsked,
                 JSON.stringify(run.cancelled), live, confirming].join('|');
    if (key === stopKey) return;
    stopKey = key;
    const parts = [];
    el.dataset.protocol = run.protocol;
    if (run.cancelled) {
      parts.push(h('span', { class: 'badge badge-cancelled',
                             'data-status': 'cancelled' }, 'cancelled'),
        h('span', { class: 'muted small' },
          ' stopped from this hub at epoch ' + run.cancelled.epoch));
    } else if (run.stopAsked) {
      parts.push(h('span', { class: 'muted small', id: 'stop-asked' },
        'Stop asked: the run stops at its next epoch.'));
    } else if (live && run.stoppable && confirming) {
      parts.push(h('span', { class: 'confirm' },
        h('span', {}, 'Stop this run? It ends at its next epoch. '),
        h('button', { class: 'button button-danger', id: 'stop-confirm',
                      type: 'button', onclick: askStop }, 'Stop run'),
        ' ',
        h('button', { class: 'button-quiet', type: 'button',
                      onclick: () => { confirming = false; renderStop(); } },
          'Keep running')));
    } else if (live && run.stoppable) {
      parts.push(h('button', { class: 'button-quiet', id: 'stop',
                               type: 'button',
                               onclick: () => { confirming = true;
                                                renderStop(); } },
        'Stop run…'));
    } else if (live) {
      parts.push(h('button', { class: 'button-quiet', id: 'stop',
                               type: 'button', disabled: true,
                               title: 'not supported by this run\'s client' },
        'Stop run'),
      h('span', { class: 'muted small', id: 'stop-unsupported' },
        ' This run reports over the HUB protocol, which has no way to tell ' +
        'its client to stop: stop the trainer where it runs.'));
    }
    parts.push(h('span', { class: 'error small', id: 'stop-error' }));
    el.replaceChildren(...parts);
  }

  /* ---- console -------------------------------------------------------- */

  /* Terminal colours and progress-bar redraws out: what a person reads. */
  function cleanLine(s) {
    const noAnsi = s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    const cr = noAnsi.lastIndexOf('\r');
    return cr >= 0 ? noAnsi.slice(cr + 1) : noAnsi;
  }

  function addConsole(text) {
    const parts = (cons.partial + text).split('\n');
    cons.partial = parts.pop();
    for (const p of parts) cons.lines.push(cleanLine(p));
  }

  function consoleLines() {
    return cons.partial ? cons.lines.concat([cleanLine(cons.partial)])
                        : cons.lines;
  }

  function renderConsole() {
    const all = consoleLines();
    const sec = $('console-section');
    sec.hidden = all.length === 0;
    const pre = $('console');
    pre.dataset.lines = String(all.length);
    const key = all.length + '\u0000' + cons.filter;
    if (key === cons.shownKey) return;
    cons.shownKey = key;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    const q = cons.filter.toLowerCase();
    if (!q) {
      const from = Math.max(0, all.length - CONSOLE_SHOWN);
      pre.textContent = all.slice(from).join('\n');
      $('console-note').textContent = from > 0
        ? 'The last ' + CONSOLE_SHOWN + ' of ' + all.length +
          ' lines; download the log for all of them.'
        : all.length + (all.length === 1 ? ' line' : ' lines');
    } else {
      const nodes = [];
      let n = 0;
      for (const line of all) {
        const at = line.toLowerCase().indexOf(q);
        if (at < 0) continue;
        n++;
        if (n > MATCHES_SHOWN) continue;
        nodes.push(h('span', { class: 'match' }, line.slice(0, at),
          h('mark', {}, line.slice(at, at + q.length)),
          line.slice(at + q.length)), '\n');
      }
      pre.replaceChildren(...nodes);
      pre.dataset.matches = String(n);
      $('console-note').textContent = n + (n === 1 ? ' line matches'
                                                   : ' lines match') +
        (n > MATCHES_SHOWN ? ' (the first ' + MATCHES_SHOWN + ' shown)' : '');
    }
    if (atEnd || !q) pre.scrollTop = pre.scrollHeight;
  }

  async function pullConsole() {
    for (let page = 0; page < PAGE_MAX; page++) {
      const d = await api(base + '/console?after=' + cons.next);
      for (const c of d.chunks || []) addConsole(c.content || '');
      cons.next = d.next;
      if (!d.more) break;
    }
    renderConsole();
  }

  /* ---- the machine's load --------------------------------------------- */

  /* gpus comes as {"0": {...}} from Platform and libchub; an array is
   * taken too. */
  function gpuList(sys) {
    const g = sys && sys.gpus;
    if (!g || typeof g !== 'object') return [];
    return Array.isArray(g) ? g.map((v, i) => [String(i), v])
                            : Object.entries(g);
  }

  function num(v) {
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }

  /* The load charts: [key, title, [[label, value-of-sample], ...]]. */
  function loadCharts(samples) {
    const gpus = new Set();
    for (const s of samples) {
      for (const [k] of gpuList(s.system)) gpus.add(k);
    }
    const perGpu = (field) => [...gpus].sort().map((k) => ['GPU ' + k,
      (s) => {
        const g = gpuList(s.system).find(([i]) => i === k);
        return g && g[1] ? num(g[1][field]) : null;
      }]);
    return [
      ['cpu', 'CPU %', [['CPU', (s) => num(s.system && s.system.cpu)]]],
      ['ram', 'RAM %', [['RAM', (s) => num(s.system && s.system.ram)]]],
      ['gpu-usage', 'GPU utilisation %', perGpu('usage')],
      ['gpu-memory', 'GPU memory %', perGpu('memory')],
    ];
  }

  function loadOptions(title, labels, byEpoch, width) {
    return {
      width,
      height: LOAD_HEIGHT,
      legend: { show: labels.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: !byEpoch }, y: { range: [0, 100] } },
      axes: [
        { label: byEpoch ? 'epoch' : '', stroke: '#475569',
          grid: { stroke: '#e2e8f0', width: 1 },
          /* Whole epochs only, as on the metrics charts. */
          ...(byEpoch ? { incrs: chub.EPOCH_STEPS,
                          values: (u, splits) => splits.map((v) =>
                            (Number.isInteger(v) ? String(v) : '')) }
                      : {}) },
        { size: 44, stroke: '#475569', grid: { stroke: '#e2e8f0', width: 1 } },
      ],
      series: [{ label: byEpoch ? 'epoch' : 'time' }].concat(
        labels.map((l, i) => ({ label: l, stroke: COLORS[i % COLORS.length],
                                 width: 2, spanGaps: true,
                                 points: { size: 4, fill: '#fff' } }))),
    };
  }

  function renderLoad() {
    const samples = load.samples;
    $('load-section').hidden = samples.length === 0;
    if (!samples.length) return;
    /* By epoch when every sample has one (Platform), else by time. */
    const byEpoch = samples.every((s) => typeof s.epoch === 'number');
    const xs = samples.map((s) => (byEpoch ? s.epoch : s.t / 1000));
    for (const [key, title, lines] of loadCharts(samples)) {
      const ys = lines.map(([, f]) => samples.map(f));
      const points = ys.reduce((n, col) =>
        n + col.filter((v) => v !== null).length, 0);
      if (!points) continue;
      const data = [xs].concat(ys);
      const have = load.charts.get(key);
      if (have && have.series === lines.length && have.byEpoch === byEpoch) {
        have.u.setData(data);
        have.card.dataset.points = String(points);
        continue;
      }
      if (have) {
        have.u.destroy();
        have.card.remove();
      }
      const body = h('div', { class: 'chart-body', role: 'img',
                              'aria-label': title });
      const card = h('div', { class: 'card chart', 'data-system': key,
                              'data-points': points,
                              'data-series': lines.length },
        h('div', { class: 'chart-head' }, h('h4', { class: 'chart-title' },
                                             title)), body);
      $('load-charts').append(card);
      const width = Math.max(200, body.clientWidth);
      const u = new uPlot(loadOptions(title, lines.map(([l]) => l), byEpoch,
                                      width), data, body);
      load.charts.set(key, { u, card, series: lines.length, byEpoch });
      new ResizeObserver(() => {
        const w = Math.max(200, body.clientWidth);
        if (w !== u.width) u.setSize({ width: w, height: LOAD_HEIGHT });
      }).observe(body);
    }
  }

  async function pullLoad() {
    for (let page = 0; page < PAGE_MAX; page++) {
      const d = await api(base + '/system?after=' + load.next);
      const got = d.samples || [];
      /* A retried epoch comes again with a new seq: keep the newest. */
      for (const s of got) {
        if (typeof s.epoch === 'number') {
          const at = load.samples.findIndex((o) => o.epoch === s.epoch);
          if (at >= 0) load.samples.splice(at, 1);
        }
        load.samples.push(s);
      }
      load.next = d.next;
      if (!d.more) break;
    }
    renderLoad();
  }

  /* ---- plots and results ---------------------------------------------- */

  /* Confusion matrix: rows are predicted classes, columns true ones (as
   * ultralytics keeps it, with "background" last when it is one longer
   * than the class names). Colour by the share of each true class. */
  function heatMap(matrix, names) {
    const n = matrix.length;
    const labels = [];
    for (let i = 0; i < n; i++) {
      labels.push(i < names.length ? String(names[i])
                  : i === names.length ? 'background' : String(i));
    }
    const cell = Math.max(6, Math.min(48, Math.floor(560 / Math.max(n, 1))));
    const showLabels = cell >= 12;
    const margin = showLabels ? 90 : 10;
    const side = margin + cell * n;
    const canvas = h('canvas', { width: side + 10, height: side + 10,
                                 role: 'img',
                                 'aria-label': 'confusion matrix of ' + n +
                                               ' classes' });
    const ctx = canvas.getContext('2d');
    const colSum = new Array(n).fill(0);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) colSum[c] += num(matrix[r][c]) || 0;
    }
    ctx.font = '11px system-ui, sans-serif';
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        const v = num(matrix[r][c]) || 0;
        const share = colSum[c] ? v / colSum[c] : 0;
        const light = Math.round(97 - share * 62);
        ctx.fillStyle = 'hsl(221, 70%, ' + light + '%)';
        ctx.fillRect(margin + c * cell, margin + r * cell, cell - 1,
                     cell - 1);
        if (cell >= 28 && v) {
          ctx.fillStyle = share > 0.5 ? '#fff' : '#0f172a';
          ctx.textAlign = 'center';
          ctx.textBaseline = 'middle';
          ctx.fillText(fmtNum(v), margin + c * cell + cell / 2,
                       margin + r * cell + cell / 2);
        }
      }
    }
    if (showLabels) {
      ctx.fillStyle = '#475569';
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      for (let i = 0; i < n; i++) {
        ctx.fillText(labels[i].slice(0, 12), margin - 4,
                     margin + i * cell + cell / 2);
        ctx.save();
        ctx.translate(margin + i * cell + cell / 2, margin - 4);
        ctx.rotate(-Math.PI / 2);
        ctx.textAlign = 'left';
        ctx.fillText(labels[i].slice(0, 12), 0, 0);
        ctx.restore();
      }
    }
    return h('div', { class: 'card plot', 'data-plot': 'confusion_matrix',
                      'data-size': n },
      h('div', { class: 'chart-head' },
        h('h4', { class: 'chart-title' }, 'Confusion matrix'),
        h('span', { class: 'muted small' },
          'rows predicted, columns true')),
      h('div', { class: 'plot-scroll' }, canvas));
  }

  const CURVES = [
    ['pr_curve', 'Precision–recall', 'recall', 'precision'],
    ['f1_curve', 'F1–confidence', 'confidence', 'F1'],
    ['precision_curve', 'Precision–confidence', 'confidence', 'precision'],
    ['recall_curve', 'Recall–confidence', 'confidence', 'recall'],
  ];

  /* A curve's y: one array (all classes) or one per class; drawn as the
   * mean of the classes, plus each class while there are few. */
  function curveCard(key, title, xl, yl, plot, names) {
    const xs = (plot.x || []).map(num);
    let ys = Array.isArray(plot.y) ? plot.y : [];
    if (ys.length && !Array.isArray(ys[0])) ys = [ys];
    ys = ys.filter((row) => Array.isArray(row) && row.length === xs.length);
    if (!xs.length || !ys.length) return null;
    const mean = xs.map((_, i) =>
      ys.reduce((s, row) => s + (num(row[i]) || 0), 0) / ys.length);
    const series = [{ label: xl }];
    const data = [xs];
    const perClass = ys.length > 1 && ys.length <= 12;
    if (perClass) {
      ys.forEach((row, i) => {
        series.push({ label: String(names[i] !== undefined ? names[i] : i),
                      stroke: COLORS[i % COLORS.length] + '99', width: 1 });
        data.push(row.map(num));
      });
    }
    const ap = Array.isArray(plot.ap) ? plot.ap.map(num) : null;
    const apMean = ap && ap.length
      ? ap.reduce((s, v) => s + (v || 0), 0) / ap.length : null;
    series.push({ label: 'all classes' + (apMean !== null
                    ? ' (AP ' + apMean.toFixed(3) + ')' : ''),
                  stroke: '#0f172a', width: 3 });
    data.push(mean);
    const body = h('div', { class: 'chart-body' });
    const card = h('div', { class: 'card chart plot', 'data-plot': key,
                            'data-series': series.length - 1 },
      h('div', { class: 'chart-head' }, h('h4', { class: 'chart-title' },
                                           title)), body);
    return { card, draw: () => {
      const width = Math.max(240, body.clientWidth);
      /* eslint-disable-next-line no-new */
      new uPlot({
        width, height: PLOT_HEIGHT,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } },
        axes: [{ label: xl, stroke: '#475569',
                 grid: { stroke: '#e2e8f0', width: 1 } },
               { label: yl, size: 44, stroke: '#475569',
                 grid: { stroke: '#e2e8f0', width: 1 } }],
        series,
      }, data, body);
    } };
  }

  function resultRows(results) {
    const rows = [];
    const r = results.results || {};
    if (r.bestEpoch !== undefined) rows.push(['Best epoch', r.bestEpoch]);
    if (r.bestFitness !== undefined) {
      rows.push(['Best fitness', fmtNum(r.bestFitness)]);
    }
    for (const [k, v] of Object.entries(r.metrics || {})) {
      if (typeof v === 'number') rows.push([k, fmtNum(v)]);
    }
    return rows;
  }

  function renderPlots() {
    const results = run && run.results;
    const key = results ? JSON.stringify(results).length + ':' + id : '';
    if (key === plotsKey) return;
    plotsKey = key;
    const plots = (results && results.plots) || {};
    const names = Array.isArray(results && results.classNames)
      ? results.classNames : [];
    const cards = [];
    const draws = [];
    const cm = plots.confusion_matrix;
    if (cm && Array.isArray(cm.matrix) && cm.matrix.length &&
        cm.matrix.every((row) => Array.isArray(row) &&
                                 row.length === cm.matrix.length)) {
      cards.push(heatMap(cm.matrix, names));
    }
    for (const [k, title, xl, yl] of CURVES) {
      const c = plots[k] && curveCard(k, title, xl, yl, plots[k], names);
      if (c) {
        cards.push(c.card);
        draws.push(c.draw);
      }
    }
    const rows = results ? resultRows(results) : [];
    $('results-section').hidden = !cards.length && !rows.length;
    $('plots').replaceChildren(...cards);
    for (const d of draws) d();
    $('results').replaceChildren(...rows.map(([k, v]) =>
      h('tr', {}, h('th', {}, k), h('td', {}, String(v)))));
    $('results-card').hidden = !rows.length;
  }

  /* ---- environment ---------------------------------------------------- */

  function renderEnvironment() {
    const env = run && run.start && run.start.environment;
    const rows = [];
    if (env && typeof env === 'object') {
      for (const [k, v] of Object.entries(env)) {
        if (v === null || typeof v === 'object') continue;
        rows.push(h('tr', {}, h('th', {}, k), h('td', {}, String(v))));
      }
    }
    $('environment-section').hidden = rows.length === 0;
    $('environment').replaceChildren(...rows.slice(0, 40));
  }

  /* ---- wiring --------------------------------------------------------- */

  async function refresh(model) {
    live = chub.isLive(model.status);
    if (busy) return;
    busy = true;
    try {
      run = await api(base + '/run');
      renderStop();
      renderEnvironment();
      renderPlots();
      await pullConsole();
      await pullLoad();
      document.body.dataset.run = 'true';
    } catch (e) {
      /* model.js says when the hub does not answer; the next poll retries. */
    } finally {
      busy = false;
    }
  }

  function start(modelId) {
    id = modelId;
    base = '/ui/models/' + encodeURIComponent(id);
    $('console-download').setAttribute('href', base + '/console?format=text');
    $('console-search').addEventListener('input', (ev) => {
      cons.filter = ev.target.value;
      renderConsole();
    });
  }

  return { start, refresh };
})();
