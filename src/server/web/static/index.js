/*
 * index.js - the model list at /: every model this hub shows the caller,
 * newest first, with its status, progress and headline metric. It refreshes
 * itself every few seconds while any run is live, so the page can be left
 * open on a second screen.
 *
 * Runs reported under a project (Ultralytics Platform's `project=`) are
 * listed under a heading per project, newest project first, then the
 * others under "No project"; a project's name links to /?project=ID, which
 * lists only that project's runs. A box on each row picks runs for
 * /compare?ids=ID,... (2 to MAX_COMPARE of them).
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
  const MAX_COMPARE = 8;  /* runs compared at once, as in compare.js */
  const PROJECT_LIMIT = 100; /* what /ui/models?project= gives at most */

  const $ = (id) => document.getElementById(id);
  const root = $('models');
  const count = $('count');
  const errorBox = $('error');
  const headlines = new Map(); /* id -> {updated, value} cache */
  const query = new URLSearchParams(window.location.search);
  const projectId = query.get('project'); /* one project's runs, or null */
  const picked = new Set(); /* ids ticked for comparison, in ticking order */
  let shownIds = new Set(); /* ids on the page now */

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

  /* The compare button: enabled for 2 to MAX_COMPARE ticked runs that are
   * on the page. */
  function updateCompare() {
    const ids = [...picked].filter((id) => shownIds.has(id));
    const button = $('compare-open');
    const note = $('compare-note');
    /* Nothing to compare on a list of fewer than two runs. */
    button.hidden = note.hidden = shownIds.size < 2;
    button.disabled = ids.length < 2 || ids.length > MAX_COMPARE;
    button.textContent = ids.length ? 'Compare ' + ids.length : 'Compare';
    if (ids.length > MAX_COMPARE) {
      note.textContent = 'Compare takes at most ' + MAX_COMPARE +
                         ' runs: untick ' + (ids.length - MAX_COMPARE);
    } else if (ids.length === 1) {
      note.textContent = 'Tick one more run to compare';
    } else if (ids.length === 0) {
      note.textContent = 'Tick 2 to ' + MAX_COMPARE + ' runs to compare them';
    } else {
      note.textContent = '';
    }
    note.classList.toggle('compare-too-many', ids.length > MAX_COMPARE);
  }

  function pickBox(m) {
    const name = (m.meta && m.meta.name) || m.id;
    const box = h('input', { type: 'checkbox', class: 'pick',
                             'aria-label': 'Compare ' + name,
                             'data-model-id': m.id });
    box.checked = picked.has(m.id);
    box.addEventListener('change', () => {
      if (box.checked) picked.add(m.id); else picked.delete(m.id);
      updateCompare();
    });
    return box;
  }

  function table(models, heads) {
    const rows = models.map((m, i) =>
      h('tr', { 'data-model-id': m.id },
        h('td', { class: 'name' },
          h('div', { class: 'name-pick' },
            pickBox(m),
            h('div', {},
              h('a', { href: '/models/' + encodeURIComponent(m.id) },
                (m.meta && m.meta.name) || m.id),
              h('div', { class: 'muted small mono' }, m.id)))),
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

  /* The models by project, in list order (newest first): each project
   * where its newest run is, then the runs of no project. */
  function byProject(models, heads) {
    const groups = new Map(); /* project id -> {project, models, heads} */
    const none = { project: null, models: [], heads: [] };
    models.forEach((m, i) => {
      const p = m.project && m.project.id ? m.project : null;
      let g = none;
      if (p) {
        g = groups.get(p.id);
        if (!g) {
          g = { project: p, models: [], heads: [] };
          groups.set(p.id, g);
        }
      }
      g.models.push(m);
      g.heads.push(heads[i]);
    });
    return { groups: [...groups.values()], none };
  }

  function runsText(n) {
    return n + (n === 1 ? ' run' : ' runs');
  }

  function groupSection(g) {
    const p = g.project;
    const title = p
      ? h('h2', { class: 'group-title' },
          h('a', { href: '/?project=' + encodeURIComponent(p.id),
                   class: 'project-link', 'data-project-id': p.id },
            p.name || p.id),
          h('span', { class: 'muted small' }, runsText(g.models.length)))
      : h('h2', { class: 'group-title' }, 'No project',
          h('span', { class: 'muted small' }, runsText(g.models.length)));
    return h('section', { class: 'project-group',
                          'data-project-id': p ? p.id : '' },
      title, table(g.models, g.heads));
  }

  /* The whole list: grouped once any run has a project, else as it was. */
  function listView(models, heads) {
    if (!models.length) return emptyState();
    const { groups, none } = byProject(models, heads);
    if (!groups.length) return table(models, heads);
    const sections = groups.map(groupSection);
    if (none.models.length) sections.push(groupSection(none));
    return h('div', { class: 'project-groups' }, sections);
  }

  function projectNotFound() {
    return h('div', { class: 'card empty', id: 'project-notfound' },
      h('h2', {}, 'Project not found'),
      h('p', {}, 'This hub has no project ',
        h('code', {}, projectId), ', or it belongs to another API key.'),
      h('p', {}, h('a', { href: '/' }, 'See all models')));
  }

  /* One project's runs (its newest PROJECT_LIMIT). null when the hub
   * knows no such project. */
  async function loadProject() {
    let project;
    try {
      project = await api('/ui/projects/' + encodeURIComponent(projectId));
    } catch (e) {
      if (e.status === 404 || e.status === 400) return null;
      throw e;
    }
    const data = await api('/ui/models?limit=' + PROJECT_LIMIT +
                           '&project=' + encodeURIComponent(projectId));
    return { project, models: (data && data.results) || [] };
  }

  function showProject(project, models, heads) {
    const name = project.name || project.id;
    document.title = name + ' · Models · chub';
    $('project-name').textContent = name;
    $('project-head').hidden = false;
    root.replaceChildren(models.length
      ? table(models, heads)
      : h('div', { class: 'card empty', id: 'empty' },
          h('p', {}, 'No runs in this project yet.')));
    count.textContent = runsText(models.length) +
        (models.length >= PROJECT_LIMIT ? ' (the newest ' + PROJECT_LIMIT +
                                          ')' : '');
  }

  let timer = null;

  async function refresh() {
    let live = false;
    try {
      let models;
      let heads;
      if (projectId) {
        const got = await loadProject();
        if (!got) {
          root.replaceChildren(projectNotFound());
          $('project-head').hidden = true;
          count.textContent = '';
          shownIds = new Set();
          updateCompare();
          errorBox.hidden = true;
          document.body.dataset.loaded = 'true';
          return;
        }
        models = got.models;
        heads = await Promise.all(models.map(headlineOf));
        showProject(got.project, models, heads);
      } else {
        const all = await listAll('/ui/models');
        models = all.items;
        heads = await Promise.all(models.map(headlineOf));
        root.replaceChildren(listView(models, heads));
        count.textContent = models.length
            ? all.total + (all.total === 1 ? ' model' : ' models') : '';
      }
      live = models.some((m) => isLive(m.status));
      shownIds = new Set(models.map((m) => m.id));
      updateCompare();
      errorBox.hidden = true;
      document.body.dataset.loaded = 'true';
    } catch (e) {
      errorBox.textContent = 'Could not load the models: ' + e.message +
                             '. Retrying…';
      errorBox.hidden = false;
      live = true;
    }
    clearTimeout(timer);
    timer = setTimeout(refresh, live ? LIVE_MS : IDLE_MS);
  }

  $('compare-open').addEventListener('click', () => {
    const ids = [...picked].filter((id) => shownIds.has(id));
    if (ids.length < 2 || ids.length > MAX_COMPARE) return;
    window.location.assign('/compare?ids=' +
                           ids.map(encodeURIComponent).join(','));
  });

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
