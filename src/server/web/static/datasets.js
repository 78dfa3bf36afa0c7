/*
 * datasets.js - the dataset list at /datasets: every dataset this hub shows
 * the caller, newest first, with its status, size, number of files and a
 * download link once a zip is uploaded. It refreshes itself, more often
 * while a dataset still waits for its file.
 */
'use strict';

(() => {
  const { h, timeEl, fmtBytes, statusBadge, listAll } = chub;
  const WAITING_MS = 5000; /* while a dataset has no file yet */
  const IDLE_MS = 30000;   /* otherwise (download links are signed, so kept fresh) */

  const root = document.getElementById('datasets');
  const count = document.getElementById('count');
  const errorBox = document.getElementById('error');

  function nameOf(d) {
    return d.name || (d.meta && d.meta.name) || d.id;
  }

  function emptyState() {
    const origin = window.location.origin;
    return h('div', { class: 'card empty', id: 'empty' },
      h('h2', {}, 'No datasets yet'),
      h('p', {}, 'A dataset is a zip file kept on this hub; a model created ' +
                 'from it trains on it wherever its trainer runs. Create one ' +
                 'and upload its zip with your API key:'),
      h('pre', {}, h('code', {},
        'curl -H "x-api-key: $KEY" -H "content-type: application/json" \\\n' +
        '     -d \'{"meta": {"name": "my data"}}\' ' + origin +
        '/v1/datasets\n' +
        'curl -H "x-api-key: $KEY" -F file=@data.zip ' + origin +
        '/v1/datasets/ID/upload')));
  }

  function table(datasets) {
    const rows = datasets.map((d) =>
      h('tr', { 'data-dataset-id': d.id },
        h('td', { class: 'name' },
          h('a', { href: '/datasets/' + encodeURIComponent(d.id) }, nameOf(d)),
          h('div', { class: 'muted small mono' }, d.id)),
        h('td', {}, statusBadge(d.status)),
        h('td', { class: 'num size', title: typeof d.size === 'number'
                                             ? d.size + ' bytes' : null },
          typeof d.size === 'number' ? fmtBytes(d.size) : '—'),
        h('td', { class: 'num files' + (typeof d.files === 'number' ? ''
                                                                  : ' none') },
          typeof d.files === 'number' ? d.files.toLocaleString('en-US')
                                      : '—'),
        h('td', { class: 'hide-narrow' }, timeEl(d.created_at)),
        h('td', {}, d.url
          ? h('a', { class: 'download', href: d.url, download: '' },
              'download')
          : h('span', { class: 'muted small' }, 'no file yet'))));
    return h('div', { class: 'card table-wrap' },
      h('table', { class: 'datasets' },
        h('thead', {}, h('tr', {},
          h('th', {}, 'Dataset'), h('th', {}, 'Status'), h('th', {}, 'Size'),
          h('th', {}, 'Files'), h('th', { class: 'hide-narrow' }, 'Created'),
          h('th', {}, ''))),
        h('tbody', {}, rows)));
  }

  let timer = null;

  async function refresh() {
    let waiting = false;
    try {
      const { items, total } = await listAll('/ui/datasets');
      waiting = items.some((d) => d.status !== 'ready');
      root.replaceChildren(items.length ? table(items) : emptyState());
      count.textContent = items.length
          ? total + (total === 1 ? ' dataset' : ' datasets') : '';
      errorBox.hidden = true;
      document.body.dataset.loaded = 'true';
    } catch (e) {
      errorBox.textContent = 'Could not load the datasets: ' + e.message +
                             '. Retrying…';
      errorBox.hidden = false;
      waiting = true;
    }
    clearTimeout(timer);
    timer = setTimeout(refresh, waiting ? WAITING_MS : IDLE_MS);
  }

  document.getElementById('logout').addEventListener('click', (ev) => {
    ev.preventDefault();
    chub.logout();
  });
  refresh();
})();
