/*
 * index.js - the model list at /: every model this hub shows the caller,
 * newest first, with its status, progress and headline metric. It refreshes
 * itself every few seconds while any run is live, so the page can be left
 * open on a second screen.
 *
 * "New model" opens a form that creates a model on the hub (POST
 * /ui/models), optionally from one of the hub's datasets, and then shows the
 * two command lines that train it. /?dataset=ID opens the form with that
 * dataset chosen (the dataset page links there).
 */
'use strict';

(() => {
  const { api, h, timeEl, fmtNum, fmtBytes, statusBadge, isLive, headline,
          listAll, dataEl, copyText } = chub;
  const LIVE_MS = 3000;   /* refresh period while a run is live */
  const IDLE_MS = 30000;  /* otherwise, to keep "updated" times honest */

  const $ = (id) => document.getElementById(id);
  const root = $('models');
  const count = $('count');
  const errorBox = $('error');
  const headlines = new Map(); /* id -> {updated, value} cache */

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
        './your-trainer')),
      h('p', {}, 'Or create one here with ', h('strong', {}, 'New model'),
        ': it gives the two lines that train it.'));
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
        h('td', { class: 'hide-narrow data' }, dataEl(m.data)),
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
      const { items: models, total } = await listAll('/ui/models');
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

  /* ---- the "New model" form -------------------------------------------- */

  const panel = $('new-model');
  const form = $('new-model-form');
  const openButton = $('new-model-open');
  const formError = $('nm-error');
  const submit = $('nm-submit');
  const result = $('new-model-result');
  const NUMBERS = [['epochs', 'nm-epochs'], ['imgsz', 'nm-imgsz'],
                   ['batch', 'nm-batch'], ['patience', 'nm-patience']];
  let owners = { owners: [], you: null };

  function showFormError(text) {
    formError.textContent = text;
    formError.hidden = !text;
  }

  /* Who the model may be created for. Signed in, that is you and the
   * select stays hidden; on a loopback hub without a key, any owner with a
   * key (a select only when there is a choice). */
  async function loadOwners() {
    const data = await api('/ui/owners');
    const list = (data && Array.isArray(data.owners)) ? data.owners : [];
    owners = { owners: list, you: data && data.you ? data.you : null };
    const select = $('nm-owner');
    const keep = select.value;
    select.replaceChildren(...list.map((o) => h('option', { value: o }, o)));
    if (list.includes(keep)) select.value = keep;
    $('nm-owner-field').hidden = owners.you !== null || list.length <= 1;
    if (!owners.you && list.length === 0) {
      showFormError('This hub has no API key yet, so a model has no one to ' +
                    'belong to: create one with chubd --data DIR keys ' +
                    'create NAME.');
    }
  }

  /* The owner to send: none when signed in (the hub takes the cookie's),
   * else the only one or the one chosen. */
  function ownerToSend() {
    if (owners.you) return null;
    if (owners.owners.length === 1) return owners.owners[0];
    return $('nm-owner').value || null;
  }

  function datasetLabel(d) {
    const name = d.name || (d.meta && d.meta.name) || d.id;
    if (d.status === 'ready') {
      return name + ' · ' + fmtBytes(d.size) +
             (typeof d.files === 'number' ? ', ' + d.files + ' files' : '');
    }
    return name + ' · ' + (d.status || 'new') + ', no file yet';
  }

  async function loadDatasets(want) {
    const { items } = await listAll('/ui/datasets');
    const select = $('nm-dataset');
    const keep = want || select.value;
    select.replaceChildren(h('option', { value: '' }, 'none'),
      ...items.map((d) => h('option', { value: d.id,
                                        'data-status': d.status || '' },
                            datasetLabel(d))));
    select.value = items.some((d) => d.id === keep) ? keep : '';
    $('nm-dataset-hint').replaceChildren(...(items.length
      ? ['the trainer downloads it from this hub']
      : ['no datasets on this hub yet; see ',
         h('a', { href: '/datasets' }, 'Datasets')]));
  }

  async function openForm(dataset) {
    result.hidden = true;
    panel.hidden = false;
    openButton.setAttribute('aria-expanded', 'true');
    showFormError('');
    form.removeAttribute('data-ready');
    $('nm-name').focus();
    const loads = await Promise.allSettled([loadOwners(),
                                            loadDatasets(dataset)]);
    const failedLoad = loads.find((r) => r.status === 'rejected');
    if (failedLoad) {
      showFormError('Could not load the form\'s choices: ' +
                    failedLoad.reason.message);
    }
    /* Not form.dataset: a form's controls shadow its properties by name, and
     * one is called "dataset". */
    form.setAttribute('data-ready', 'true');
  }

  function closeForm() {
    panel.hidden = true;
    openButton.setAttribute('aria-expanded', 'false');
  }

  function requestBody() {
    const body = { name: $('nm-name').value.trim() };
    const owner = ownerToSend();
    if (owner) body.owner = owner;
    const dataset = $('nm-dataset').value;
    if (dataset) body.dataset = dataset;
    const arch = $('nm-arch').value.trim();
    if (arch) body.architecture = arch;
    for (const [key, id] of NUMBERS) {
      const v = $(id).value.trim();
      if (v !== '') body[key] = Number(v);
    }
    return body;
  }

  function showCreated(data, name) {
    const url = data.url ||
                window.location.origin + '/models/' + encodeURIComponent(data.id);
    const link = $('nm-link');
    link.href = url;
    link.textContent = url;
    link.title = name;
    $('nm-commands').textContent = (data.commands || []).join('\n');
    $('nm-copy').textContent = 'Copy';
    result.dataset.modelId = data.id;
    result.hidden = false;
    result.scrollIntoView({ block: 'nearest' });
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showFormError('');
    const body = requestBody();
    if (!body.name) {
      showFormError('A model needs a name.');
      $('nm-name').focus();
      return;
    }
    if (!body.architecture) {
      showFormError('A model needs an architecture, e.g. yolo11n.');
      $('nm-arch').focus();
      return;
    }
    submit.disabled = true;
    try {
      const data = await api('/ui/models', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json',
                   Accept: 'application/json' },
        body: JSON.stringify(body),
      });
      form.reset();
      closeForm();
      showCreated(data || {}, body.name);
      refresh();
    } catch (e) {
      showFormError('Could not create the model: ' + e.message);
    } finally {
      submit.disabled = false;
    }
  });

  openButton.addEventListener('click', () => {
    if (panel.hidden) {
      openForm();
    } else {
      closeForm();
    }
  });
  $('new-model-close').addEventListener('click', closeForm);
  $('new-model-done').addEventListener('click', () => {
    result.hidden = true;
  });
  $('nm-copy').addEventListener('click', async () => {
    const ok = await copyText($('nm-commands'));
    $('nm-copy').textContent = ok ? 'Copied' : 'Select and copy';
  });

  $('logout').addEventListener('click', (ev) => {
    ev.preventDefault();
    chub.logout();
  });
  refresh();
  const want = new URLSearchParams(window.location.search).get('dataset');
  if (want || window.location.hash === '#new-model') openForm(want);
})();
