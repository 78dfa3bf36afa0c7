/*
 * dataset.js - the page of one dataset at /datasets/{id}: its status, the
 * uploaded zip (size, SHA-256, file name, number of entries) with its
 * download link, and the models created from it.
 *
 * While the dataset waits for its file it polls every few seconds, so the
 * page turns ready by itself once the zip is uploaded; after that it
 * refreshes now and then, which keeps the signed download link fresh and
 * the list of models current.
 */
'use strict';

(() => {
  const { api, h, timeEl, refreshTimes, fmtBytes, statusBadge } = chub;
  const WAITING_MS = 3000;
  const IDLE_MS = 30000;

  const id = chub.idFromPath('datasets');
  const $ = (sel) => document.getElementById(sel);
  let timer = null;

  const dash = () => h('span', { class: 'muted' }, '—');
  const has = (v) => v !== null && v !== undefined && v !== '';

  function nameOf(d) {
    return d.name || (d.meta && d.meta.name) || d.id;
  }

  function renderHeader(d) {
    const name = nameOf(d);
    document.title = name + ' · chub';
    $('crumb').textContent = name;
    $('name').textContent = name;
    $('status').replaceChildren(statusBadge(d.status));
    $('subtitle').replaceChildren(
      h('span', { class: 'mono' }, d.id), ' · created ',
      timeEl(d.created_at), ' · updated ', timeEl(d.updated_at));
    $('new-model-link').href = '/?dataset=' + encodeURIComponent(d.id);
  }

  function summaryCard(label, value, note, attrs) {
    return h('div', { class: 'card stat', ...(attrs || {}) },
      h('div', { class: 'stat-label' }, label),
      h('div', { class: 'stat-value' }, value),
      note ? h('div', { class: 'stat-note muted small' }, note) : null);
  }

  function renderSummary(d) {
    const ready = typeof d.size === 'number';
    const models = d.models || [];
    $('summary').replaceChildren(
      summaryCard('Size', ready ? fmtBytes(d.size) : '—',
        ready ? d.size.toLocaleString('en-US') + ' bytes' : 'no file yet'),
      summaryCard('Files', typeof d.files === 'number'
                             ? d.files.toLocaleString('en-US') : '—',
        'entries in the zip'),
      summaryCard('Models', String(models.length), 'trained on it'),
      summaryCard('Download', d.url
        ? h('a', { href: d.url, download: '' }, 'zip') : '—',
        d.filename || null));
  }

  /* A dataset without its file says how to upload one. */
  function renderUploadHelp(d) {
    const box = $('upload-help');
    box.hidden = d.status === 'ready' || !!d.url;
    if (box.hidden) return;
    box.replaceChildren(
      h('p', {}, h('strong', {}, 'No file yet.'),
        ' Upload the dataset\'s zip with your API key; this page turns ' +
        'ready by itself:'),
      h('pre', {}, h('code', {},
        'curl -H "x-api-key: $KEY" -F file=@data.zip ' +
        window.location.origin + '/v1/datasets/' + d.id + '/upload')));
  }

  function renderDetails(d) {
    const rows = [
      ['Name', nameOf(d), 'ds-name'],
      ['Status', d.status, 'ds-status'],
      ['Size', typeof d.size === 'number'
        ? h('span', { title: d.size + ' bytes' }, fmtBytes(d.size),
            h('span', { class: 'muted' },
              ' (' + d.size.toLocaleString('en-US') + ' bytes)'))
        : null, 'ds-size'],
      ['SHA-256', has(d.sha256)
        ? h('span', { class: 'mono hash' }, d.sha256) : null, 'ds-sha256'],
      ['File name', has(d.filename)
        ? h('span', { class: 'mono' }, d.filename) : null, 'ds-filename'],
      ['Entries', typeof d.files === 'number'
        ? d.files.toLocaleString('en-US') : null, 'ds-files'],
      ['Download', d.url
        ? h('a', { id: 'ds-download', class: 'download', href: d.url,
                   download: '' }, 'download the zip')
        : null, 'ds-url'],
      ['Created', timeEl(d.created_at), 'ds-created'],
      ['Updated', timeEl(d.updated_at), 'ds-updated'],
    ];
    $('details').replaceChildren(...rows.map(([k, v, cell]) =>
      h('tr', {}, h('th', {}, k),
        h('td', { id: cell }, has(v) ? v : dash()))));
  }

  function renderModels(d) {
    const models = d.models || [];
    if (!models.length) {
      $('models').replaceChildren(h('div', { class: 'card empty',
                                             id: 'no-models' },
        h('p', {}, 'No model has been created from this dataset yet.'),
        h('p', {}, h('a', { href: '/?dataset=' + encodeURIComponent(d.id) },
                     'Create one'))));
      return;
    }
    const rows = models.map((m) =>
      h('tr', { 'data-model-id': m.id },
        h('td', { class: 'name' },
          h('a', { href: '/models/' + encodeURIComponent(m.id) },
            m.name || m.id),
          h('div', { class: 'muted small mono' }, m.id)),
        h('td', {}, statusBadge(m.status))));
    $('models').replaceChildren(h('div', { class: 'card table-wrap' },
      h('table', { class: 'dataset-models' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Model'),
                         h('th', {}, 'Status'))),
        h('tbody', {}, rows))));
  }

  function showNotFound() {
    $('loading').hidden = true;
    $('dataset').hidden = true;
    $('notfound-id').textContent = id || window.location.pathname;
    $('notfound').hidden = false;
    $('crumb').textContent = 'not found';
    document.title = 'Dataset not found · chub';
  }

  async function tick() {
    let waiting = true;
    try {
      const d = await api('/ui/datasets/' + encodeURIComponent(id));
      waiting = d.status !== 'ready';
      $('loading').hidden = true;
      $('error').hidden = true;
      $('dataset').hidden = false;
      renderHeader(d);
      renderSummary(d);
      renderUploadHelp(d);
      renderDetails(d);
      renderModels(d);
      document.body.dataset.loaded = 'true';
    } catch (e) {
      if (e.status === 404) {
        showNotFound();
        document.body.dataset.loaded = 'true';
        return;
      }
      $('loading').hidden = true;
      $('error').textContent = 'Could not load this dataset: ' + e.message +
                               '. Retrying…';
      $('error').hidden = false;
    }
    clearTimeout(timer);
    timer = setTimeout(tick, waiting ? WAITING_MS : IDLE_MS);
  }

  if (!id) {
    showNotFound();
  } else {
    tick();
  }
  setInterval(() => refreshTimes(), 10000);
})();
