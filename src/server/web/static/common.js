/*
 * common.js - helpers shared by chubd's pages: talking to /ui/* (with the
 * session cookie, and off to /login on 401), building DOM nodes without
 * innerHTML (model names and metric names come from trainers, so nothing is
 * ever parsed as HTML), and formatting times, sizes and numbers for a person.
 * The page a person was sent away from rides along as /login?next=PATH.
 */
'use strict';

const chub = (() => {
  /* An answer that is not a 2xx, carrying the HTTP status and the hub's
   * message so that a page can say what went wrong. */
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /* GET (or POST) a /ui/* endpoint and return the envelope's data. A 401
   * means this hub wants a key and the cookie is missing or stale: the
   * person goes to /login, and the promise never settles so that no page
   * flashes an error on the way out. */
  async function api(path, options = {}) {
    let res;
    try {
      res = await fetch(path, {
        credentials: 'same-origin',
        headers: { Accept: 'application/json' },
        ...options,
      });
    } catch (e) {
      throw new ApiError(0, 'the hub did not answer (' + e.message + ')');
    }
    if (res.status === 401 && !options.noLoginRedirect) {
      window.location.assign('/login?next=' +
                             encodeURIComponent(window.location.pathname));
      return new Promise(() => {});
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok || (body && body.success === false)) {
      const msg = body && body.message ? body.message : res.statusText;
      throw new ApiError(res.status, msg || 'HTTP ' + res.status);
    }
    return body ? body.data : null;
  }

  /* h('a', {href: '/x', class: 'y'}, 'text', child...) -> element. Strings
   * become text nodes; null/undefined/false children are skipped. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2), v);
      } else if (k === 'style') {
        /* Through the CSSOM: the pages' Content-Security-Policy refuses
         * style attributes. */
        el.style.cssText = String(v);
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function parseTime(t) {
    if (t === null || t === undefined || t === '') return null;
    const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  /* "just now", "42 s ago", "3 min ago", "5 h ago", "2 days ago". */
  function relTime(t) {
    const d = parseTime(t);
    if (!d) return '—';
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    const days = Math.floor(s / 86400);
    return days === 1 ? 'yesterday' : days + ' days ago';
  }

  /* A <time> that reads relative and shows the full local time on hover;
   * data-t lets refreshTimes() keep it current without a refetch. */
  function timeEl(t) {
    const d = parseTime(t);
    if (!d) return h('span', { class: 'muted' }, '—');
    return h('time', { datetime: d.toISOString(), title: d.toLocaleString(),
                       'data-t': d.toISOString() }, relTime(d.toISOString()));
  }

  function refreshTimes(root) {
    for (const el of (root || document).querySelectorAll('time[data-t]')) {
      el.textContent = relTime(el.dataset.t);
    }
  }

  /* 1 KiB = 1024 B; three significant figures is what a person compares. */
  function fmtBytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
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

  /* Metric values: counts (parameters) get thousands separators, the rest
   * four significant digits without trailing zeros. */
  function fmtNum(v) {
    if (v === null || v === undefined || typeof v !== 'number' ||
        !Number.isFinite(v)) {
      return '—';
    }
    if (Number.isInteger(v) && Math.abs(v) >= 1000) {
      return v.toLocaleString('en-US');
    }
    if (Math.abs(v) >= 10000) return Math.round(v).toLocaleString('en-US');
    return String(Number(v.toPrecision(4)));
  }

  const STATUS_TEXT = {
    new: 'new',
    training: 'training',
    trained: 'trained',
    disconnected: 'disconnected',
    ready: 'ready',
  };

  function statusBadge(status) {
    const s = status || 'unknown';
    return h('span', { class: 'badge badge-' + (STATUS_TEXT[s] ? s : 'other'),
                       'data-status': s }, STATUS_TEXT[s] || s);
  }

  /* Whether a model may still change, so the page keeps polling. */
  function isLive(status) {
    return status === 'new' || status === 'training' ||
           status === 'disconnected';
  }

  /* Names of metrics where a bigger number is better: the headline of a
   * run is its best value of one of these, else its last loss. */
  const HEADLINE_ORDER = [
    'metrics/mAP50-95(B)', 'metrics/mAP50-95(M)', 'metrics/accuracy_top1',
    'metrics/accuracy', 'val/accuracy', 'metrics/mAP50(B)',
  ];

  function higherIsBetter(name) {
    return /(map|acc|accuracy|precision|recall|f1|top1|top5|fitness)/i.test(
        name) && !/loss/i.test(name);
  }

  /* Picks the headline metric of a run from its metrics rows:
   * {name, value, epoch, best} or null when there is none. */
  function headline(rows) {
    const names = new Set();
    for (const r of rows) {
      for (const k of Object.keys(r.metrics || {})) names.add(k);
    }
    let name = HEADLINE_ORDER.find((n) => names.has(n));
    if (!name) {
      name = [...names].find((n) => n.startsWith('metrics/') &&
                                    higherIsBetter(n));
    }
    if (!name) name = [...names].find((n) => n.startsWith('metrics/'));
    if (!name) name = [...names].find((n) => /loss/i.test(n));
    if (!name) return null;
    const better = higherIsBetter(name);
    let pick = null;
    for (const r of rows) {
      const v = r.metrics ? r.metrics[name] : undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      if (!better) {
        pick = { value: v, epoch: r.epoch };
      } else if (!pick || v > pick.value) {
        pick = { value: v, epoch: r.epoch };
      }
    }
    return pick ? { name, value: pick.value, epoch: pick.epoch, best: better }
                : null;
  }

  /* The id is the last path segment of /{kind}/{id} (/models/ID,
   * /datasets/ID). */
  function idFromPath(kind) {
    const m = window.location.pathname.match(
        new RegExp('^/' + kind + '/([^/?#]+)/?$'));
    return m ? decodeURIComponent(m[1]) : null;
  }

  function modelIdFromPath() {
    return idFromPath('models');
  }

  /* Every page of a /ui list endpoint, newest first: {items, total}.
   * MAX_PAGES bounds the walk over a very large hub. */
  async function listAll(path, pageSize = 100, maxPages = 20) {
    const items = [];
    let cursor = null;
    let total = 0;
    for (let page = 0; page < maxPages; page++) {
      const data = await api(path + '?limit=' + pageSize +
          (cursor ? '&last_doc_id=' + encodeURIComponent(cursor) : ''));
      const results = (data && data.results) || [];
      total = data && typeof data.total === 'number' ? data.total : total;
      items.push(...results);
      cursor = data ? data.lastRecordId : null;
      if (!cursor || results.length < pageSize || items.length >= total) break;
    }
    return { items, total: Math.max(total, items.length) };
  }

  /* A model's `data` for a person: a dataset of this hub (its signed
   * download URL, /v1/datasets/{id}/download/{sha256}/{file}?...) becomes a
   * link to that dataset's page named by the file; anything else (a name,
   * another URL) is shown as it is. */
  function dataEl(data) {
    if (data === null || data === undefined || data === '') {
      return h('span', { class: 'muted' }, '—');
    }
    const s = String(data);
    let u = null;
    try {
      u = new URL(s, window.location.origin);
    } catch (e) {
      u = null;
    }
    const m = u && /^https?:$/.test(u.protocol) &&
        u.pathname.match(/^\/v1\/datasets\/([^/]+)\/download\/[0-9a-f]{64}\/([^/]+)$/);
    if (!m || !/^[a-z]+:\/\//i.test(s)) return s;
    return h('a', { href: '/datasets/' + m[1], title: s, 'data-dataset-id':
                    decodeURIComponent(m[1]) },
             decodeURIComponent(m[2]));
  }

  /* Copies the text of `el` (a <pre>) to the clipboard: the Clipboard API
   * where the page may use it (https, loopback), else by selecting the
   * text and asking the browser to copy it. Resolves to whether it worked. */
  async function copyText(el) {
    const text = el.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (e) {
        /* fall back to selecting it */
      }
    }
    const range = document.createRange();
    range.selectNodeContents(el);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (e) {
      ok = false;
    }
    return ok;
  }

  async function logout() {
    try {
      await fetch('/ui/logout', { method: 'POST', credentials: 'same-origin' });
    } finally {
      window.location.assign('/login');
    }
  }

  /* ---- charts of values against epochs (uPlot) ---------------------- */

  /* Ticks on whole epochs only: uPlot picks the smallest step from this
   * list that leaves room between labels. */
  const EPOCH_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000,
                       2000, 5000, 10000];

  /* Axis labels: as many decimals as the step between ticks needs, the
   * same for every tick (0.68, 0.70, 0.72 rather than 0.68, 0.7, 0.72). */
  function fmtTicks(splits) {
    const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 0;
    const big = Math.max(...splits.map((v) => Math.abs(v || 0)));
    if (big >= 1e6 || (big > 0 && big < 1e-3)) {
      return splits.map((v) => (v === 0 ? '0' : v.toExponential(1)));
    }
    let dec = 2;
    if (step > 0) {
      const mag = Math.floor(Math.log10(step));
      const mantissa = step / Math.pow(10, mag);
      const whole = Math.abs(mantissa - Math.round(mantissa)) < 1e-9;
      dec = Math.min(8, Math.max(0, -mag + (whole ? 0 : 1)));
    }
    return splits.map((v) => (v === null ? ''
      : dec === 0 ? Math.round(v).toLocaleString('en-US') : v.toFixed(dec)));
  }

  /* uPlot scales of a metric against epochs: half an epoch either side of
   * a single point (so that its only tick is that epoch, never a negative
   * one), and a little room above and below the values. */
  function epochScales() {
    return {
      x: {
        time: false,
        range: (u, min, max) => (min === max ? [min - 0.5, max + 0.5]
                                             : [min, max]),
      },
      y: {
        range: (u, min, max) => {
          if (min === null || max === null) return [0, 1];
          if (min === max) {
            const pad = Math.abs(min) * 0.1 || 1;
            return [min - pad, max + pad];
          }
          const pad = (max - min) * 0.08;
          return [min - pad, max + pad];
        },
      },
    };
  }

  /* The axes to go with them: whole epochs below, fmtTicks at the side. */
  function epochAxes() {
    const look = { stroke: '#475569', grid: { stroke: '#e2e8f0', width: 1 },
                   ticks: { stroke: '#cbd5e1', width: 1 } };
    return [
      { label: 'epoch', labelSize: 22, incrs: EPOCH_STEPS,
        values: (u, splits) => splits.map((v) =>
          (Number.isInteger(v) ? String(v) : '')),
        ...look },
      { size: 58, values: (u, splits) => fmtTicks(splits), ...look },
    ];
  }

  /* The grid of charts group g (one of groups, each with a title) in
   * parent, made the first time, the groups kept in the order of groups
   * whatever order they appear in. */
  function chartGroup(parent, groups, g) {
    const at = groups.indexOf(g);
    const gid = 'group-' + at;
    let sec = document.getElementById(gid);
    if (!sec) {
      sec = h('div', { id: gid, class: 'chart-group' },
        h('h3', {}, g.title),
        h('div', { class: 'chart-grid' }));
      const after = [...parent.children].find((el) =>
        Number(el.id.slice(6)) > at);
      parent.insertBefore(sec, after || null);
    }
    return sec.querySelector('.chart-grid');
  }

  return {
    ApiError, api, h, relTime, timeEl, refreshTimes, fmtBytes, fmtNum,
    statusBadge, isLive, headline, higherIsBetter, idFromPath,
    modelIdFromPath, listAll, dataEl, copyText, logout,
    EPOCH_STEPS, fmtTicks, epochScales, epochAxes, chartGroup,
  };
})();
