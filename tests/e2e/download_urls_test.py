#!/usr/bin/env python3
"""download_urls_test.py - a trained model's download URLs, fetched the way
Ultralytics fetches them: Python's urllib, a plain GET with no header.

Usage: download_urls_test.py --chubd PATH --trainer PATH --chub PATH

Starts the real chubd (127.0.0.1:0, a fresh data directory, a key made with
`chubd --data DIR keys create`), trains the C example (fashion_mnist, 500
images, 2 epochs) against it so that the model has `weights` and `resume`,
then checks what ultralytics-clients.md part B relies on:
  - `weights` and `resume` download with urllib.request.urlopen(url) and no
    header; the bytes are what x-api-key GET .../weights/best and /last
    serve, their sha256 is the checkpoint's, best is the local best.bin;
  - each URL's last path segment (query dropped, %-decoded: the local file
    name Ultralytics uses) is {id}-best|last-{sha8} with the uploaded file's
    suffix (.bin: the C trainer's files; a best.pt upload gives .pt), and
    the two differ;
  - every checkpoint url serves that checkpoint;
  - a download cut in half resumes with `Range: bytes=HALF-` (206), and the
    pieces put together are the file; If-None-Match gives 304;
  - an altered URL (sig, file name) is 403 with a JSON message, never a file;
  - chubd restarted on the same data with --url-ttl 3: a URL works, then
    after its expiry answers 403 "expired", and the model read again hands
    out a fresh URL that works.
Standard library only. Every wait is bounded; every process this starts is
stopped by its PID on every exit path.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

TRAIN_TIMEOUT_S = 240  # a sanitized build trains about 10x slower
START_TIMEOUT_S = 20


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def say(msg):
    print("download_urls: " + msg, flush=True)


class Chubd:
    """One chubd process on a data directory; stopped by its PID."""

    def __init__(self, binary, data, work):
        self.binary, self.data, self.work = binary, data, work
        self.proc = None
        self.url = None
        self.log_path = os.path.join(work, "chubd.log")

    def cli(self, *args):
        r = subprocess.run([self.binary, "--data", self.data, *args],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        check(r.returncode == 0, "chubd %s exited %d: %s" %
              (" ".join(args), r.returncode, r.stderr))
        return r.stdout

    def start(self, *extra):
        port_file = os.path.join(self.work, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "--listen", "127.0.0.1:0", "--data", self.data,
                 "--port-file", port_file, *extra],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    port = f.readline().strip()
                if port.isdigit():
                    self.url = "http://127.0.0.1:%s" % port
                    say("chubd (pid %d%s) at %s" %
                        (self.proc.pid, "".join(" " + a for a in extra),
                         self.url))
                    return
            if self.proc.poll() is not None:
                self.proc = None
                raise Fail("chubd exited before serving:\n" + self.log())
            time.sleep(0.02)
        self.kill()
        raise Fail("chubd wrote no port within %d s:\n%s" %
                   (START_TIMEOUT_S, self.log()))

    def stop(self):
        """SIGTERM, at most 10 s, then SIGKILL; returns the exit status."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=10)
        self.proc = None
        return rc

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return "(no log)"


def keyed(url, key, headers=None):
    """A GET with x-api-key: status, headers, body (errors included)."""
    req = urllib.request.Request(url, headers={"x-api-key": key,
                                               **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def model(hub, key, mid):
    status, _, body = keyed("%s/v1/models/%s" % (hub.url, mid), key)
    check(status == 200, "GET /v1/models/%s: %d %r" % (mid, status, body[:300]))
    return json.loads(body)["data"]


def plain_get(url):
    """urllib.request.urlopen(url) as Ultralytics calls it: no header."""
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
        check(r.status == 200, "GET %s: %d" % (url, r.status))
        length = r.headers.get("Content-Length")
        check(length is not None and int(length) == len(body),
              "GET %s: Content-Length %s for %d bytes" % (url, length,
                                                          len(body)))
        return body


def refused(url, headers=None):
    """The HTTPError a URL answers: (code, parsed JSON body). Fails the
    test when it answers 2xx instead."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            raise Fail("GET %s answered %d with %d bytes, expected a refusal" %
                       (url, r.status, len(body)))
    except urllib.error.HTTPError as e:
        body = e.read()
        if e.code == 304:
            return e.code, None
        ctype = e.headers.get("Content-Type", "")
        check(ctype.startswith("application/json"),
              "GET %s: %d with Content-Type %r, not JSON" % (url, e.code,
                                                            ctype))
        env = json.loads(body)
        check(env.get("success") is False and isinstance(env.get("message"),
                                                         str),
              "GET %s: %d without a failure envelope: %r" % (url, e.code,
                                                            body[:300]))
        return e.code, env


def file_name(url):
    """The local file name Ultralytics gives a download: the %-decoded
    path's last segment, query dropped."""
    return os.path.basename(urllib.parse.unquote(
        urllib.parse.urlsplit(url).path))


def url_sha(url):
    """The sha256 in .../weights/{sha256}/{NAME}."""
    parts = urllib.parse.urlsplit(url).path.split("/")
    return parts[-2] if len(parts) >= 2 else ""


def with_query(url, **change):
    """url with query parameters replaced."""
    u = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    q = [(k, change.get(k, v)) for k, v in q]
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def train(args, hub, key, tmp):
    """Trains the example against hub; returns (model id, out dir)."""
    env = dict(os.environ)
    for k in ("CHUB_WEB_ROOT", "CHUB_MODE", "CHUB_HUB", "FASHION_MNIST_DIR"):
        env.pop(k, None)
    env.update(CHUB_TESTING="1", CHUB_CONFIG_DIR=os.path.join(tmp, "config"),
               CHUB_RUNS_DIR=os.path.join(tmp, "runs"), CHUB_API_ROOT=hub.url,
               CHUB_API_KEY=key)
    os.makedirs(env["CHUB_CONFIG_DIR"], mode=0o700)
    os.makedirs(env["CHUB_RUNS_DIR"], mode=0o700)
    # A checkpoint after every epoch: a short run still uploads `last`.
    r = subprocess.run([args.chub, "settings", "rate_limit_ckpt=0",
                        "rate_limit_metrics=0"], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "chub settings: %s%s" % (r.stdout, r.stderr))
    out = os.path.join(tmp, "out")
    try:
        r = subprocess.run([args.trainer, "--model", "mlp-small.cfg",
                            "--limit", "500", "--epochs", "2", "--out", out,
                            "--seed", "7"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=TRAIN_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise Fail("the trainer ran over %d s:\n%s" %
                   (TRAIN_TIMEOUT_S, e.output or ""))
    print("---- trainer output ----\n%s------------------------" % r.stdout,
          flush=True)
    check(r.returncode == 0, "the trainer exited %d" % r.returncode)
    m = re.search(r"View model at \S*/models/([A-Za-z0-9]{20})", r.stdout)
    check(m is not None, "no 'View model at' line in the trainer's output")
    return m.group(1), out


def check_downloads(hub, key, mid, out):
    m = model(hub, key, mid)
    check(m.get("status") == "trained", "status %r" % m.get("status"))
    weights, resume = m.get("weights"), m.get("resume")
    check(isinstance(weights, str) and isinstance(resume, str),
          "a trained model needs weights and resume: %r, %r" % (weights,
                                                                 resume))
    # The trainer writes best.bin and last.bin, and libchub uploads them
    # under that suffix: a download keeps the uploaded file's suffix (.pt
    # for what a Python trainer uploads; check_pt_upload below).
    for name, url, label in (("weights", weights, "best"),
                             ("resume", resume, "last")):
        check(url.startswith(hub.url + "/v1/models/%s/weights/" % mid),
              "%s %r is not an absolute URL on %s" % (name, url, hub.url))
        want = "%s-%s-%s.bin" % (mid, label, url_sha(url)[:8])
        check(file_name(url) == want,
              "%s %r: file name %r, expected %r" % (name, url, file_name(url),
                                                   want))
    check(file_name(weights) != file_name(resume),
          "weights and resume have the same file name %r" % file_name(weights))

    ckpts = m.get("checkpoints") or []
    by_sha = {c.get("sha256"): c for c in ckpts}
    finals = [c for c in ckpts if c.get("type") == "final"]
    check(len(finals) == 1, "expected one final checkpoint: %r" % ckpts)

    # weights: the best, as the keyed path serves it and as trained.
    best = plain_get(weights)
    status, _, keyed_best = keyed("%s/v1/models/%s/weights/best" %
                                  (hub.url, mid), key)
    check(status == 200, "keyed GET weights/best: %d" % status)
    check(best == keyed_best, "weights URL bytes differ from weights/best")
    check(sha256(best) == finals[0]["sha256"],
          "weights sha256 %s, the final checkpoint's %s" %
          (sha256(best), finals[0]["sha256"]))
    check(url_sha(weights) == sha256(best), "weights URL names sha256 %s" %
          url_sha(weights))
    with open(os.path.join(out, "best.bin"), "rb") as f:
        check(f.read() == best, "weights URL bytes are not the local best.bin")
    say("weights: %d bytes, %s" % (len(best), file_name(weights)))

    # resume: the last, likewise.
    last = plain_get(resume)
    status, _, keyed_last = keyed("%s/v1/models/%s/weights/last" %
                                  (hub.url, mid), key)
    check(status == 200, "keyed GET weights/last: %d" % status)
    check(last == keyed_last, "resume URL bytes differ from weights/last")
    check(sha256(last) in by_sha,
          "resume sha256 %s is no checkpoint's" % sha256(last))
    check(url_sha(resume) == sha256(last), "resume URL names sha256 %s" %
          url_sha(resume))
    say("resume: %d bytes, %s%s" % (len(last), file_name(resume),
                                     " (the same blob as weights)"
                                     if last == best else ""))

    # Every checkpoint's url.
    for c in ckpts:
        url = c.get("url")
        check(isinstance(url, str) and url.startswith(hub.url + "/"),
              "checkpoint url %r is not absolute" % url)
        check(file_name(url).startswith(mid + "-") and
              file_name(url).endswith("-%s.bin" % c["sha256"][:8]),
              "checkpoint url %r: file name %r" % (url, file_name(url)))
        body = plain_get(url)
        check(sha256(body) == c["sha256"] and len(body) == c["size"],
              "checkpoint url %r does not serve its checkpoint" % url)
    names = {file_name(c["url"]) for c in ckpts}
    check(len(names) == len(ckpts), "checkpoint file names repeat: %r" % names)
    say("%d checkpoint urls served their checkpoints" % len(ckpts))

    # A download cut halfway, resumed with Range.
    half = len(last) // 2
    with urllib.request.urlopen(resume, timeout=30) as r:
        first = r.read(half)
    check(len(first) == half, "read %d of %d bytes" % (len(first), half))
    req = urllib.request.Request(resume, headers={"Range": "bytes=%d-" % half})
    with urllib.request.urlopen(req, timeout=30) as r:
        tail = r.read()
        check(r.status == 206, "Range: bytes=%d- answered %d" % (half,
                                                                r.status))
        want = "bytes %d-%d/%d" % (half, len(last) - 1, len(last))
        check(r.headers.get("Content-Range") == want,
              "Content-Range %r, expected %r" %
              (r.headers.get("Content-Range"), want))
    check(first + tail == last, "the two pieces are not the file")
    say("a download cut at %d bytes resumed with Range: 206" % half)

    code, _ = refused(resume, {"If-None-Match": '"%s"' % sha256(last)})
    check(code == 304, "If-None-Match answered %d, expected 304" % code)

    # Altered: never a file.
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(resume).query))
    check("sig" in q and "expires" in q, "resume %r has no sig and expires" %
          resume)
    sig = q["sig"]
    other = ("0" if sig[-1] != "0" else "1")
    u = urllib.parse.urlsplit(resume)
    renamed = urllib.parse.urlunsplit(
        u._replace(path=u.path.rsplit("/", 1)[0] + "/best.pt"))
    for bad in (with_query(resume, sig=sig[:-1] + other), renamed,
                with_query(resume, expires=str(int(q["expires"]) + 60))):
        code, env = refused(bad)
        check(code == 403, "altered URL %s answered %d, expected 403" %
              (bad, code))
        check("signature" in env["message"].lower(),
              "altered URL: message %r does not mention the signature" %
              env["message"])
    say("altered URLs: 403")


def check_pt_upload(hub, key):
    """What a Python trainer uploads (a best.pt part): the weights URL's
    file name ends in .pt, so Ultralytics loads it."""
    body = json.dumps({"config": {"epochs": 1}, "dataset": {"name": "x"},
                       "lineage": {"architecture": {"name": "yolo11n"}},
                       "meta": {"name": "yolo11n"}}).encode()
    req = urllib.request.Request(hub.url + "/v1/models", data=body, headers={
        "x-api-key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        mid = json.loads(r.read())["data"]["id"]
    blob = os.urandom(50000)
    bd = "downloadurlstest7f3"
    parts = []
    for name, value in (("epoch", "0"), ("type", "final"), ("map", "0.5")):
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\""
                      "\r\n\r\n%s\r\n" % (bd, name, value)).encode())
    parts.append(("--%s\r\nContent-Disposition: form-data; name=\"best.pt\"; "
                  "filename=\"best.pt\"\r\nContent-Type: "
                  "application/octet-stream\r\n\r\n" % bd).encode())
    parts.append(blob + ("\r\n--%s--\r\n" % bd).encode())
    req = urllib.request.Request(
        "%s/v1/models/%s/upload" % (hub.url, mid), data=b"".join(parts),
        headers={"x-api-key": key,
                 "Content-Type": "multipart/form-data; boundary=" + bd})
    with urllib.request.urlopen(req, timeout=30) as r:
        check(r.status == 200, "upload best.pt: %d" % r.status)
    weights = model(hub, key, mid)["weights"]
    want = "%s-best-%s.pt" % (mid, sha256(blob)[:8])
    check(file_name(weights) == want, "weights of a best.pt upload %r: file "
          "name %r, expected %r" % (weights, file_name(weights), want))
    check(plain_get(weights) == blob, "weights of a best.pt upload: bytes")
    say("a best.pt upload: weights named %s" % want)


def check_expiry(hub, key, mid):
    m = model(hub, key, mid)
    url = m["resume"]
    want = plain_get(url)
    expires = int(dict(urllib.parse.parse_qsl(
        urllib.parse.urlsplit(url).query))["expires"])
    now = time.time()
    check(expires <= now + 3 + 2, "--url-ttl 3: expires %d, now %d" %
          (expires, now))
    # Bounded by the check above: at most about 6 s.
    while time.time() <= expires + 1:
        time.sleep(0.1)
    code, env = refused(url)
    check(code == 403, "expired URL answered %d, expected 403" % code)
    check("expired" in env["message"].lower(),
          "expired URL: message %r does not say expired" % env["message"])
    say("expired URL: 403 %r" % env["message"])
    fresh = model(hub, key, mid)["resume"]
    check(fresh != url, "reading the model again gave the same URL")
    check(plain_get(fresh) == want, "the fresh URL serves other bytes")
    say("fresh URL after expiry: 200")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chubd", required=True)
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--chub", required=True)
    args = ap.parse_args()
    # Loopback only: no proxy from the caller's environment in between.
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
              "all_proxy", "ALL_PROXY"):
        os.environ.pop(k, None)
    # ctest's timeout sends SIGTERM: unwind so that chubd is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = tempfile.mkdtemp(prefix="chub-download-urls-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    hub = Chubd(args.chubd, data, tmp)
    ok = False
    try:
        key = hub.cli("keys", "create", "owner").strip()
        check(re.fullmatch(r"[A-Za-z0-9]{42}", key) is not None,
              "keys create printed %r" % key)
        hub.start()
        mid, out = train(args, hub, key, tmp)
        check_downloads(hub, key, mid, out)
        check_pt_upload(hub, key)
        rc = hub.stop()
        check(rc == 0, "chubd exited %d on SIGTERM" % rc)
        hub.start("--url-ttl", "3")
        check_expiry(hub, key, mid)
        rc = hub.stop()
        check(rc == 0, "chubd exited %d on SIGTERM" % rc)
        ok = True
    except (Fail, urllib.error.HTTPError, urllib.error.URLError,
            subprocess.TimeoutExpired, KeyError, ValueError) as e:
        print("FAIL: %s" % e, file=sys.stderr, flush=True)
        print("---- chubd log ----\n%s" % hub.log(), file=sys.stderr)
    finally:
        hub.stop()
        if os.environ.get("CHUB_KEEP_TMP"):
            print("keeping %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if ok:
        say("ok")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
