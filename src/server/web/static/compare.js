/*
 * compare.js - runs side by side at /compare?ids=ID1,ID2,... (2 to
 * MAX_RUNS models, picked on the model list): one uPlot chart per metric
 * any of the runs reported, with a line per run against epoch and a legend
 * naming each run by its model name; then one table with a column per
 * run: each metric's last value, the best one marked, and the run's
 * configuration, rows that differ highlighted.
 *
 * An id the hub does not know (deleted, another key's, mistyped) is named
 * in a message of its own and the other runs are still compared. While any
 * run may still change the page polls and updates its charts in place.
 *
 * Every chart's card carries data-metric="NAME", data-series="N" (the runs
 * drawn in it) and data-points (points drawn, all runs), and every cell of
 * the tables the model id of its run, so that what is shown can be checked
 * from outside. A run draws at most MAX_POINTS points per chart (every k-th
 * epoch, and its last, beyond that); the tables use every epoch.
 */
'use strict';

(() => {
  const { api, h, fmtNum, statusBadge, isLive, dataEl } = chub;
  const MAX_RUNS = 8;
  const MAX_POINTS = 2000;
  const POLL_MS = 5000;
  const CHART_HEIGHT = 240;
  const ID_RE = /^[A-Za-z0-9]{20}$/;
  /* One colour per run, the same on every chart and in the tables. */
  const COLORS = ['#1f4fd1', '#c2410c', '#15803d', '#7c3aed', '#b91c1c',
                  '#0e7490', '#a16207', '#be185d'];
  const GROUPS = [
    { prefix: 'metrics/', title: 'Evaluation' },
    { prefix: 'val/', title: 'Validation' },
    { prefix: 'train/', title: 'Training' },
    { prefix: '', title: 'Other' },
  ];
  /* Facts about the network (parameters, GFLOPs, speed): in the table
   * only, as on a model's page. */
  const INFO_PREFIX = 'model/';
  /* train_args in the order a person reads them; other keys follow. */
  const CONFIG_ORDER = ['project', 'architecture', 'pretrained from', 'data',
                        'epochs', 'batch', 'imgsz', 'patience', 'device',
                        'cache'];
  const CONFIG_MAPPED = new Set(['batchSize', 'epochs', 'imageSize',
                                 'patience', 'device', 'cache']);

  const $ = (id) => document.getElementById(id);
  const charts = new Map(); /* metric -> {u, card, body, key, width} */
  let timer = null;

  /* ---- which runs ------------------------------------------------------- */

  function askedIds() {
    const raw = new URLSearchParams(window.location.search).get('ids') || '';
    const ids = [];
    for (const part of raw.split(',')) {
      const id = part.trim();
      if (id && !ids.includes(id)) ids.push(id);
    }
    return ids;
  }

  function notice(...children) {
    $('loading').hidden = true;
    $('notice').replaceChildren(...children);
    $('notice').hidden = false;
    document.body.dataset.loaded = 'true';
  }

  async function loadRun(id) {
    if (!ID_RE.test(id)) {
      return { id, problem: 'is not a model id (20 letters and digits).' };
    }
    const base = '/ui/models/' + encodeURIComponent(id);
    try {
      /* The hub keeps each metric's envelope in MAX_POINTS values (the
       * last epoch whole, for the table). */
      const [model, rows] = await Promise.all([
        api(base), api(base + '/metrics?points=' + MAX_POINTS)]);
      return { id, model, rows: (rows || []).slice().sort((a, b) =>
        a.epoch - b.epoch) };
    } catch (e) {
      if (e.status === 404) {
        return { id, problem: 'is not on this hub: it was deleted, or it ' +
                              'belongs to another API key.' };
      }
      if (e.status === 400) return { id, problem: 'is not a model id.' };
      throw e;
    }
  }

  function nameOf(m) {
    return (m.meta && m.meta.name) || m.id;
  }

  /* Legend names: the model name, with the project or the id's start when
   * two runs share a name (Platform runs are all "train" in their
   * projects). */
  function labelRuns(runs) {
    const count = new Map();
    for (const r of runs) {
      const name = nameOf(r.model);
      count.set(name, (count.get(name) || 0) + 1);
    }
    const used = new Set();
    runs.forEach((r, i) => {
      const name = nameOf(r.model);
      let label = name;
      if (count.get(name) > 1) {
        const p = r.model.project && r.model.project.name;
        label = name + ' (' + (p || r.id.slice(0, 6)) + ')';
        if (used.has(label)) label = name + ' (' + r.id + ')';
      }
      used.add(label);
      r.label = label;
      r.color = COLORS[i % COLORS.length];
    });
  }

  /* ---- charts ----------------------------------------------------------- */

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  function groupOf(name) {
    return GROUPS.find((g) => name.startsWith(g.prefix));
  }

  function chartNames(runs) {
    const names = new Set();
    for (const r of runs) {
      for (const row of r.rows) {
        for (const [k, v] of Object.entries(row.metrics || {})) {
          if (!k.startsWith(INFO_PREFIX) && isNum(v)) names.add(k);
        }
      }
    }
    return sortNames([...names]);
  }

  function sortNames(names) {
    const rank = (n) => (n.startsWith(INFO_PREFIX) ? GROUPS.length
      : GROUPS.indexOf(groupOf(n)));
    return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }

  /* One run's points of a metric, at most MAX_POINTS: every k-th one and
   * always the last. */
  function pointsOf(run, name) {
    const pts = [];
    for (const row of run.rows) {
      const v = row.metrics ? row.metrics[name] : undefined;
      if (isNum(v)) pts.push([row.epoch, v]);
    }
    if (pts.length <= MAX_POINTS) return { pts, step: 1 };
    const step = Math.ceil(pts.length / MAX_POINTS);
    const kept = pts.filter((p, i) => i % step === 0 || i === pts.length - 1);
    return { pts: kept, step };
  }

  /* uPlot's columns: x = every epoch any drawn run has, then a column per
   * run with null where it has no value. */
  function seriesOf(runs, name) {
    const drawn = [];
    for (const r of runs) {
      const { pts, step } = pointsOf(r, name);
      if (pts.length) drawn.push({ run: r, pts, step });
    }
    const xs = [...new Set(drawn.flatMap((d) => d.pts.map((p) => p[0])))]
      .sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const cols = drawn.map((d) => {
      const ys = new Array(xs.length).fill(null);
      for (const [x, v] of d.pts) ys[at.get(x)] = v;
      return ys;
    });
    return {
      drawn,
      data: [xs, ...cols],
      key: drawn.map((d) => d.run.id).join(','),
      points: drawn.reduce((n, d) => n + d.pts.length, 0),
    };
  }

  function chartOptions(s, width) {
    return {
      width,
      height: CHART_HEIGHT,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: chub.epochScales(),
      axes: chub.epochAxes(),
      series: [
        { label: 'epoch', value: (u, v) => (v === null ? '--' : String(v)) },
        ...s.drawn.map((d) => ({
          label: d.run.label,
          stroke: d.run.color,
          width: 2,
          spanGaps: true,
          points: { size: 4, fill: '#fff' },
          value: (u, v) => (v === null ? '--' : fmtNum(v)),
        })),
      ],
    };
  }

  function strideNote(s) {
    const strided = s.drawn.filter((d) => d.step > 1);
    if (!strided.length) return null;
    return 'every ' + strided.map((d) => d.step + 'th epoch of ' +
                                         d.run.label).join(', ') + ' drawn';
  }

  function makeChart(name, s) {
    const body = h('div', { class: 'chart-body chart-body-compare',
                            role: 'img',
                            'aria-label': name + ', ' + s.drawn.length +
                                          (s.drawn.length === 1 ? ' run'
                                                                : ' runs') });
    const note = h('div', { class: 'chart-note muted small' });
    const card = h('div', { class: 'card chart', 'data-metric': name,
                            'data-series': s.drawn.length,
                            'data-points': s.points },
      h('div', { class: 'chart-head' },
        h('h4', { class: 'chart-title', title: name }, name)),
      body, note);
    chub.chartGroup($('charts'), GROUPS, groupOf(name)).append(card);
    const width = Math.max(200, body.clientWidth);
    const entry = { card, body, note, key: s.key, width, u: null };
    entry.u = new uPlot(chartOptions(s, width), s.data, body);
    entry.resize = new ResizeObserver(() => {
      const w = Math.max(200, body.clientWidth);
      if (w !== entry.width) {
        entry.width = w;
        entry.u.setSize({ width: w, height: CHART_HEIGHT });
      }
    });
    entry.resize.observe(body);
    return entry;
  }

  function renderCharts(runs) {
    const names = chartNames(runs);
    $('no-metrics').hidden = names.length > 0;
    for (const name of names) {
      const s = seriesOf(runs, name);
      let c = charts.get(name);
      if (c && c.key === s.key) {
        c.u.setData(s.data);
      } else {
        if (c) {
          /* The runs drawn changed (one reported its first value): a new
           * chart, for a legend with every run. */
          c.resize.disconnect();
          c.u.destroy();
          c.card.remove();
        }
        c = makeChart(name, s);
        charts.set(name, c);
      }
      c.card.dataset.series = String(s.drawn.length);
      c.card.dataset.points = String(s.points);
      c.note.textContent = strideNote(s) || '';
    }
    for (const sec of $('charts').children) {
      const n = sec.querySelectorAll('[data-metric]').length;
      sec.classList.toggle('chart-group-single', n === 1);
    }
  }

  /* ---- the tables ------------------------------------------------------- */

  function renderHeads(runs) {
    $('side-head').replaceChildren(h('tr', {}, h('th', {}, ''),
      ...runs.map((r) => h('th', { class: 'run-col', 'data-model-id': r.id },
        h('span', { class: 'run-key' },
          h('span', { class: 'swatch', style: 'background:' + r.color }),
          h('a', { href: '/models/' + encodeURIComponent(r.id),
                   title: r.id }, r.label)),
        h('div', {}, statusBadge(r.model.status))))));
  }

  function groupRow(title, runs) {
    return h('tr', { class: 'group-row' },
      h('th', { colspan: runs.length + 1 }, title));
  }

  /* Higher is better for metrics/*, lower for losses; 0 when neither. */
  function direction(name) {
    if (/loss/i.test(name)) return -1;
    if (name.startsWith('metrics/')) return 1;
    return 0;
  }

  function lastValues(run) {
    const last = new Map(); /* name -> {value, epoch} */
    for (const row of run.rows) {
      for (const [k, v] of Object.entries(row.metrics || {})) {
        if (isNum(v)) last.set(k, { value: v, epoch: row.epoch });
      }
    }
    return last;
  }

  function renderFinals(runs) {
    const lasts = runs.map(lastValues);
    const names = sortNames([...new Set(lasts.flatMap((m) => [...m.keys()]))]);
    const rows = names.map((name) => {
      const vals = lasts.map((m) => (m.has(name) ? m.get(name).value : null));
      const present = vals.filter((v) => v !== null);
      const dir = direction(name);
      let best = null;
      if (dir !== 0 && present.length >= 2 &&
          present.some((v) => v !== present[0])) {
        best = dir > 0 ? Math.max(...present) : Math.min(...present);
      }
      return h('tr', { 'data-metric': name },
        h('th', { title: name }, name),
        ...runs.map((r, i) => {
          const got = lasts[i].get(name);
          if (!got) {
            return h('td', { 'data-model-id': r.id, class: 'muted' }, '—');
          }
          const isBest = best !== null && got.value === best;
          return h('td', { 'data-model-id': r.id, 'data-value': got.value,
                           'data-best': isBest ? 'true' : null,
                           class: isBest ? 'best-cell' : null,
                           title: (isBest ? 'best; ' : '') + 'epoch ' +
                                  got.epoch }, fmtNum(got.value));
        }));
    });
    if (!rows.length) {
      rows.push(h('tr', {}, h('th', {}, ''),
        h('td', { colspan: runs.length, class: 'muted' }, 'no metrics yet')));
    }
    $('finals').replaceChildren(groupRow('Final metrics', runs), ...rows);
  }

  function textOf(v) {
    if (v === null || v === undefined || v === '') return null;
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }

  /* What one run was trained with: label -> {show, same} where `same` is
   * what is compared (a signed dataset URL without its signature, which
   * differs per model and per read). */
  function configOf(m) {
    const out = new Map();
    const put = (k, v, show) => {
      const t = textOf(v);
      if (t === null) return;
      let same = t;
      if (/^https?:\/\//i.test(t)) {
        try {
          const u = new URL(t);
          same = u.origin + u.pathname;
        } catch (e) {
          same = t;
        }
      }
      out.set(k, { show: show || t, same });
    };
    put('project', m.project ? m.project.name : null);
    put('architecture', m.cfg);
    put('pretrained from', m.parent ? m.parent.name : null);
    for (const [k, v] of Object.entries(m.train_args || {})) {
      put(k, v, k === 'data' ? dataEl(v) : null);
    }
    for (const [k, v] of Object.entries(m.config || {})) {
      if (!CONFIG_MAPPED.has(k)) put('config.' + k, v);
    }
    for (const [k, v] of Object.entries(m.meta || {})) {
      if (k !== 'name' && k !== 'project') put('meta.' + k, v);
    }
    return out;
  }

  function renderConfig(runs) {
    const cfgs = runs.map((r) => configOf(r.model));
    const keys = [...new Set(cfgs.flatMap((c) => [...c.keys()]))];
    const rank = (k) => {
      const i = CONFIG_ORDER.indexOf(k);
      return i >= 0 ? i : CONFIG_ORDER.length;
    };
    keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    const rows = keys.map((k) => {
      const sames = cfgs.map((c) => (c.has(k) ? c.get(k).same : null));
      const differs = runs.length > 1 && sames.some((s) => s !== sames[0]);
      return h('tr', { 'data-key': k, class: differs ? 'differs' : null,
                       'data-differs': differs ? 'true' : null },
        h('th', {}, k),
        ...runs.map((r, i) => {
          const c = cfgs[i].get(k);
          return h('td', { 'data-model-id': r.id, class: c ? null : 'muted' },
                   c ? c.show : '—');
        }));
    });
    $('config').replaceChildren(groupRow('Configuration', runs), ...rows);
  }

  function renderProblems(missing) {
    $('problems').replaceChildren(...missing.map((r) =>
      h('li', { class: 'banner banner-error', 'data-missing-id': r.id },
        'Model ', h('code', {}, r.id), ' ' + r.problem)));
    $('problems').hidden = missing.length === 0;
  }

  /* ---- loading and polling ---------------------------------------------- */

  async function tick(ids) {
    let live = true;
    try {
      const got = await Promise.all(ids.map(loadRun));
      const runs = got.filter((r) => r.model);
      const missing = got.filter((r) => !r.model);
      $('loading').hidden = true;
      $('error').hidden = true;
      renderProblems(missing);
      if (!runs.length) {
        notice(h('h2', {}, 'Nothing to compare'),
          h('p', {}, 'None of the runs asked for is on this hub.'),
          h('p', {}, h('a', { href: '/' }, 'Pick runs on the model list')));
        return;
      }
      labelRuns(runs);
      live = runs.some((r) => isLive(r.model.status));
      $('live').hidden = !live;
      $('count').textContent = runs.length +
                               (runs.length === 1 ? ' run' : ' runs');
      if (runs.length === 1) {
        $('notice').replaceChildren(h('p', {}, 'Only one of the runs asked ' +
          'for is here; pick another on ', h('a', { href: '/' },
                                              'the model list'), '.'));
        $('notice').hidden = false;
      } else {
        $('notice').hidden = true;
      }
      document.title = runs.map((r) => r.label).join(' vs ') + ' · chub';
      $('compare').hidden = false;
      renderCharts(runs);
      renderHeads(runs);
      renderFinals(runs);
      renderConfig(runs);
      document.body.dataset.loaded = 'true';
    } catch (e) {
      $('loading').hidden = true;
      $('error').textContent = 'Could not load the runs: ' + e.message +
                               '. Retrying…';
      $('error').hidden = false;
    }
    clearTimeout(timer);
    if (live) timer = setTimeout(() => tick(ids), POLL_MS);
  }

  const ids = askedIds();
  if (ids.length === 0) {
    notice(h('h2', {}, 'No runs chosen'),
      h('p', {}, 'Tick 2 to ' + MAX_RUNS + ' runs on ',
        h('a', { href: '/' }, 'the model list'), ' and press Compare.'));
  } else if (ids.length > MAX_RUNS) {
    notice(h('h2', {}, 'Too many runs'),
      h('p', {}, 'This page compares at most ' + MAX_RUNS + ' runs at once, ' +
                 'and ' + ids.length + ' were asked for. Pick fewer on ',
        h('a', { href: '/' }, 'the model list'), '.'));
  } else {
    tick(ids);
  }
})();
