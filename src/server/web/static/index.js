/*
 * index.js - the model list at /: every model this hub shows the caller,
 * newest first, with its status, progress and headline metric. It refreshes
 * itself every few seconds while any run is live, so the page can be left
 * open on a second screen.
 */
'use strict';

(() => {
  const { api, h, timeEl, fmtNum, statusBadge, isLive, headline } = chub;
  const PAGE = 100;       /* the most /ui/models answers at once */
  const MAX_PAGES = 20;   /* bounds the walk over a very large hub */
  const LIVE_MS = 3000;   /* refresh period while a run is live */
  const IDLE_MS = 30000;  /* otherwise, to keep "updated" times honest */

  const root = document.getElementById('models');
  const count = document.getElementById('count');
  const errorBox = document.getElementById('error');
  const headlines = new Map(); /* id -> {updated, value} cache */

  async function listModels() {
    const all = [];
    let cursor = null;
    let total = 0;
    for (let page = 0; page < MAX_PAGES; page++) {
      const q = '/ui/models?limit=' + PAGE +
                (cursor ? '&last_doc_id=' + encodeURIComponent(cursor) : '');
      const data = await api(q);
      const results = (data && data.results) || [];
      total = data && typeof data.total === 'number' ? data.total : total;
      all.push(...results);
      cursor = data ? data.lastRecordId : null;
      if (!cursor || results.length < PAGE || all.length >= total) break;
    }
    return { models: all, total: Math.max(total, all.length) };
  }

  /* The headline needs the run's metrics; fetch them only when the model
   * changed since the last look. */
  async function headlineOf(m) {
    const cached = headlines.get(m.id);
    if (cached && cached.updated === m.updated_at) return cached.value;
    if (!m.metrics_count) {
      headlines.set(m.id, { updated: m.updated_at, value: null });
      return null;
    }
    try {
      const rows = await api('/ui/models/' + encodeURIComponent(m.id) +
                             '/metrics');
      const value = headline(rows || []);
      headlines.set(m.id, { updated: m.updated_at, value });
      return value;
    } catch (e) {
      return cached ? cached.value : null;
    }
  }

  function progress(m) {
    const total = typeof m.epochs === 'number' ? m.epochs : null;
    const done = typeof m.last_epoch === 'number' ? m.last_epoch + 1 : 0;
    const pct = total ? Math.min(100, Math.round((100 * done) / total)) : 0;
    return h('div', { class: 'progress-cell' },
             h('span', { class: 'num' }, total ? done + ' / ' + total
                                               : String(done)),
             total ? h('span', { class: 'bar' },
                       h('span', { style: 'width:' + pct + '%' }))
                   : null);
  }

  function headlineCell(hl) {
    if (!hl) return h('span', { class: 'muted' }, '—');
    return h('span', { class: 'headline', title: hl.name },
             h('span', { class: 'num' }, fmtNum(hl.value)),
             h('span', { class: 'muted small' },
               ' ' + hl.name.replace(/^metrics\//, '') +
               (hl.best ? ' best' : ' last')));
  }

  function emptyState() {
    const origin = window.location.origin;
    return h('div', { class: 'card empty', id: 'empty' },
      h('h2', {}, 'No models yet'),
      h('p', {}, 'Runs appear here as soon as a trainer reports its first ' +
                 'epoch. To see one now, run the demo from the chub source ' +
                 'tree:'),
      h('pre', {}, h('code', {}, 'make demo')),
      h('p', {}, 'Or point any trainer built with chub at this hub:'),
      h('pre', {}, h('code', {},
        'chubd --data DIR keys create me     # prints an API key\n' +
        'export CHUB_API_ROOT=' + origin + '\n' +
        'export CHUB_API_KEY=<that key>\n' +
        './your-trainer')));
  }

  function table(models, heads) {
    const rows = models.map((m, i) =>
      h('tr', { 'data-model-id': m.id },
        h('td', { class: 'name' },
          h('a', { href: '/models/' + encodeURIComponent(m.id) },
            (m.meta && m.meta.name) || m.id),
          h('div', { class: 'muted small mono' }, m.id)),
        h('td', {}, statusBadge(m.status)),
        h('td', {}, progress(m)),
        h('td', {}, headlineCell(heads[i])),
        h('td', { class: 'hide-narrow' }, m.data || '—'),
        h('td', {}, timeEl(m.updated_at || m.created_at))));
    return h('div', { class: 'card table-wrap' },
      h('table', { class: 'models' },
        h('thead', {}, h('tr', {},
          h('th', {}, 'Model'), h('th', {}, 'Status'), h('th', {}, 'Epochs'),
          h('th', {}, 'Headline'), h('th', { class: 'hide-narrow' }, 'Data'),
          h('th', {}, 'Updated'))),
        h('tbody', {}, rows)));
  }

  let timer = null;

  async function refresh() {
    let live = false;
    try {
      const { models, total } = await listModels();
      const heads = await Promise.all(models.map(headlineOf));
      live = models.some((m) => isLive(m.status));
      root.replaceChildren(models.length ? table(models, heads)
                                         : emptyState());
      count.textContent = models.length
          ? total + (total === 1 ? ' model' : ' models') : '';
      errorBox.hidden = true;
    } catch (e) {
      errorBox.textContent = 'Could not load the models: ' + e.message +
                             '. Retrying…';
      errorBox.hidden = false;
      live = true;
    }
    clearTimeout(timer);
    timer = setTimeout(refresh, live ? LIVE_MS : IDLE_MS);
  }

  document.getElementById('logout').addEventListener('click', (ev) => {
    ev.preventDefault();
    chub.logout();
  });
  refresh();
})();
