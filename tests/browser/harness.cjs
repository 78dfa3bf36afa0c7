/*
 * harness.cjs - what every browser test here shares: its arguments, the
 * processes and directories it made (killed by PID and removed on every
 * exit path), ok / not ok lines, bounded waits, the real chubd on a free
 * loopback port with a fresh data directory and key, calls to its HTTP API,
 * and Debian's Chromium through playwright-core with every page's
 * JavaScript errors and every request leaving the hub recorded.
 *
 *   const t = require('./harness.cjs');
 *   const args = t.parseArgs(process.argv.slice(2), ['chubd', 'modules']);
 *   t.runPages(args, async (ctx, hub) => { ... });   // or t.run(main)
 */
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const children = new Set(); /* PIDs of processes this test started */
const tmpDirs = [];
const counts = { passed: 0, failed: 0 };

function killAll() {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      /* already gone */
    }
  }
  children.clear();
}

function removeTmp() {
  if (process.env.CHUB_KEEP_TMP) return;
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
}

process.on('exit', () => {
  killAll();
  removeTmp();
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

/* --name value pairs; each of `required` must be there. */
function parseArgs(argv, required) {
  const out = {};
  const script = path.basename(process.argv[1] || 'test');
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(script + ': arguments are --name value pairs');
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of required) {
    if (!out[k]) throw new Error(script + ': --' + k + ' is required');
  }
  return out;
}

function tmpDir(tag) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'chub-browser-' + tag + '-'));
  tmpDirs.push(d);
  return d;
}

function check(cond, what, detail) {
  if (cond) {
    counts.passed++;
    console.log('ok - ' + what);
  } else {
    counts.failed++;
    console.log('not ok - ' + what + (detail ? ': ' + detail : ''));
  }
  return cond;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Polls fn() every 100 ms until it returns a truthy value, at most `ms`. */
async function waitFor(what, fn, ms = 10000) {
  const tries = Math.ceil(ms / 100);
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v;
    await sleep(100);
  }
  throw new Error('timed out after ' + ms + ' ms waiting for ' + what);
}

/* Starts the command as a child this test owns (killed on exit). */
function spawnOwned(bin, argv, opts) {
  const proc = spawn(bin, argv, opts);
  children.add(proc.pid);
  proc.exitedWith = null;
  proc.on('exit', (code, sig) => {
    proc.exitedWith = sig || String(code);
    children.delete(proc.pid);
  });
  return proc;
}

function createKey(chubd, data, owner) {
  const run = spawnSync(chubd, ['--data', data, 'keys', 'create', owner],
                        { encoding: 'utf8', timeout: 10000 });
  const key = (run.stdout || '').trim();
  if (run.status !== 0 || !/^[A-Za-z0-9]{42}$/.test(key)) {
    throw new Error('chubd keys create ' + owner + ' failed (status ' +
                    run.status + '): ' + run.stderr);
  }
  return key;
}

/* The real chubd with a fresh data directory and a key of owner "browser"
 * (hub.key); also a key of "browser-other", so that a page without a key
 * has a choice of owner. */
async function startChubd(chubd, extra = []) {
  const work = tmpDir('chubd');
  const data = path.join(work, 'data');
  fs.mkdirSync(data);
  const log = path.join(work, 'chubd.log');
  const key = createKey(chubd, data, 'browser');
  createKey(chubd, data, 'browser-other');
  const portFile = path.join(work, 'port');
  const logFd = fs.openSync(log, 'a');
  const proc = spawnOwned(chubd, ['--listen', '127.0.0.1:0', '--data', data,
                                  '--port-file', portFile, ...extra],
                          { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const port = await waitFor('chubd port file', () => {
    if (proc.exitedWith !== null) {
      throw new Error('chubd exited (' + proc.exitedWith +
                      ') before serving: ' + fs.readFileSync(log, 'utf8'));
    }
    const s = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8') : '';
    return /^\d+\n$/.test(s) ? Number(s) : 0;
  });
  const scheme = extra.includes('--tls-cert') ? 'https' : 'http';
  const hub = { proc, key, data, log,
                base: scheme + '://127.0.0.1:' + port };
  hub.stop = async () => {
    if (proc.exitedWith !== null) return;
    proc.kill('SIGTERM');
    try {
      await waitFor('chubd to exit on SIGTERM',
                    () => proc.exitedWith !== null, 10000);
    } catch (e) {
      proc.kill('SIGKILL');
    }
  };
  return hub;
}

/* METHOD p on the hub with `headers` (and the hub's key as x-api-key unless
 * they carry Authorization); a JSON body is sent as JSON, FormData as
 * multipart. The whole JSON answer, or an Error naming the status. */
async function send(hub, method, p, body, headers = {}) {
  const auth = Object.keys(headers).some((k) =>
    k.toLowerCase() === 'authorization') ? {} : { 'x-api-key': hub.key };
  const res = await fetch(hub.base + p, {
    method,
    headers: { ...auth, ...headers,
               ...(body && !(body instanceof FormData)
                   ? { 'content-type': 'application/json' } : {}) },
    body: body instanceof FormData ? body
          : body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (e) {
    json = null;
  }
  if (!res.ok) {
    throw new Error(method + ' ' + p + ' answered ' + res.status + ': ' +
                    text.slice(0, 300));
  }
  return json;
}

/* send, answering the envelope's data. */
async function call(hub, method, p, body, headers = {}) {
  const json = await send(hub, method, p, body, headers);
  return json ? json.data : null;
}

/* POST /api/webhooks{p} as Ultralytics Platform's client sends it (Bearer
 * key); the whole answer (Platform reads its fields at the top level). */
async function webhook(hub, p, body) {
  return send(hub, 'POST', '/api/webhooks' + p, body,
              { Authorization: 'Bearer ' + hub.key });
}

/* Chromium with a fresh profile. ctx.errors collects the pages' JavaScript
 * errors and Content-Security-Policy refusals; ctx.offsite every request
 * to an origin not in ctx.hubs (add each hub's base). */
async function launch(modules, opts = {}) {
  const { chromium } = require(path.join(modules, 'playwright-core'));
  const ctx = await chromium.launchPersistentContext(tmpDir('profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-quic',
           ...(opts.args || [])],
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    timeout: 30000,
  });
  ctx.errors = [];
  ctx.offsite = [];
  ctx.hubs = new Set();
  ctx.on('page', (p) => {
    p.on('pageerror', (e) => ctx.errors.push(e.message));
    p.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) {
        ctx.errors.push(m.text());
      }
    });
  });
  ctx.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol.startsWith('http') && !ctx.hubs.has(u.origin)) {
      ctx.offsite.push(r.url());
    }
  });
  return ctx;
}

/* The usual browser test: one chubd, one Chromium, scenario(ctx, hub),
 * then no JavaScript error on any page and nothing fetched from elsewhere;
 * both stopped on every path. */
function runPages(args, scenario) {
  run(async () => {
    fs.mkdirSync(args.shots, { recursive: true });
    const hub = await startChubd(args.chubd);
    let ctx = null;
    try {
      ctx = await launch(args.modules);
      ctx.hubs.add(hub.base);
      await scenario(ctx, hub);
      check(ctx.errors.length === 0, 'no JavaScript errors on any page',
            ctx.errors.join(' | '));
      check(ctx.offsite.length === 0,
            'pages load nothing from outside the hub', ctx.offsite.join(' '));
    } finally {
      if (ctx) await ctx.close();
      await hub.stop();
    }
  });
}

/* Runs main, then prints the count and exits 0 only when nothing failed. */
function run(main) {
  main().then(() => {
    console.log(counts.passed + ' passed, ' + counts.failed + ' failed');
    process.exit(counts.failed === 0 ? 0 : 1);
  }, (e) => {
    console.log('not ok - ' + (e && e.stack ? e.stack : e));
    counts.failed++;
    console.log(counts.passed + ' passed, ' + counts.failed + ' failed');
    process.exit(1);
  });
}

module.exports = { parseArgs, tmpDir, check, sleep, waitFor, spawnOwned,
                   startChubd, send, call, webhook, launch, run, runPages };
