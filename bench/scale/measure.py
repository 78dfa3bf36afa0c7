#!/usr/bin/env python3
"""measure.py - the HTTP figures of bench/scale against one running chubd.

  measure.py run URL KEY CHUBD_PID BIG_ID MODELS OUT.json [REQUESTS]
  measure.py report SMALL.json LARGE.json [PAGE_SMALL.json PAGE_LARGE.json]

`run` times, over one keep-alive connection (the same client for every
size): the first page of GET /v1/models, the last page (the cursor is
found by walking the whole list once, which also checks every model is
listed exactly once), GET /v1/models/{id} of the big model, and its
metrics read-back (?points=1280 as the model page asks, then whole),
with chubd's peak resident memory (VmHWM) and its file-backed part
(RssFile) before the first read of those metrics and after the last,
and the peak of its anonymous memory (RssAnon, sampled every 2 ms) in
between. Figures go to OUT.json in milliseconds.

`report` prints each figure at both sizes with the ratio and its ceiling.
Standard library only; nothing is asserted.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def pct(xs, p):
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


class Client:
    """One keep-alive HTTP/1.1 connection with the key on every request."""

    def __init__(self, url, key):
        u = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.headers = {"x-api-key": key}

    def get(self, path):
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit("GET %s: %d %s" % (path, r.status, body[:300]))
        return body

    def timed(self, path, n, warm=5):
        for _ in range(warm):
            self.get(path)
        out = []
        for _ in range(n):
            t = time.perf_counter()
            self.get(path)
            out.append((time.perf_counter() - t) * 1000.0)
        return out

    def stream(self, path):
        """Reads path in 64 KiB pieces: (ms, bytes, ms per quarter)."""
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        marks = []
        total = 0
        while True:
            piece = r.read(65536)
            if not piece:
                break
            total += len(piece)
            marks.append((total, time.perf_counter() - t0))
        if r.status != 200:
            raise SystemExit("GET %s: %d" % (path, r.status))
        ms = (time.perf_counter() - t0) * 1000.0
        quarters = []
        prev_t = 0.0
        for q in (1, 2, 3, 4):
            want = total * q / 4.0
            at = next((t for b, t in marks if b >= want), marks[-1][1])
            quarters.append((at - prev_t) * 1000.0)
            prev_t = at
        return ms, total, quarters


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


class AnonPeak(threading.Thread):
    """Samples chubd's RssAnon every 2 ms until stopped; keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = status_kb(pid, "RssAnon")
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, status_kb(self.pid, "RssAnon"))
            time.sleep(0.002)


def walk(c, models):
    """Every model once, newest first, in pages of 100: the ids."""
    ids, cursor = [], None
    while True:
        path = "/v1/models?limit=100"
        if cursor:
            path += "&last_doc_id=" + cursor
        data = json.loads(c.get(path))["data"]
        ids += [m["id"] for m in data["results"]]
        cursor = data["lastRecordId"]
        if not cursor:
            break
    if len(ids) != models + 1 or len(set(ids)) != len(ids):
        raise SystemExit("walk: %d ids (%d distinct), want %d" %
                         (len(ids), len(set(ids)), models + 1))
    return ids


def run(url, key, pid, big, models, out, n):
    c = Client(url, key)
    fig = {}
    fig["first_page"] = c.timed("/v1/models", n)
    t = time.perf_counter()
    ids = walk(c, models)
    fig["walk_s"] = time.perf_counter() - t
    # The default page (10) that ends the list: after the 11th from last.
    last = "/v1/models?last_doc_id=" + ids[-11]
    body = json.loads(c.get(last))["data"]
    if body["lastRecordId"] is not None or len(body["results"]) != 10:
        raise SystemExit("last page: not the end of the list")
    fig["last_page"] = c.timed(last, n)
    fig["model_get"] = c.timed("/v1/models/" + big, n)
    # Memory from before the first read of the big model's metrics.
    before = {k: status_kb(pid, k) for k in ("VmHWM", "RssAnon", "RssFile")}
    sampler = AnonPeak(pid)
    sampler.start()
    # Each of these reads all of the big model's epochs: fewer of them.
    fig["points"] = c.timed("/v1/models/%s/metrics?points=1280" % big,
                            max(20, min(50, n // 4)), warm=2)
    reads = [c.stream("/v1/models/%s/metrics" % big) for _ in range(5)]
    sampler.stop.set()
    sampler.join()
    fig["readback"] = [r[0] for r in reads]
    fig["readback_bytes"] = reads[0][1]
    fig["readback_quarters"] = reads[-1][2]
    fig["hwm_before_kb"] = before["VmHWM"]
    fig["hwm_after_kb"] = status_kb(pid, "VmHWM")
    fig["anon_before_kb"] = before["RssAnon"]
    fig["anon_peak_kb"] = sampler.peak
    fig["file_before_kb"] = before["RssFile"]
    fig["file_after_kb"] = status_kb(pid, "RssFile")
    with open(out, "w") as f:
        json.dump(fig, f)


def row(name, a, b, ceiling=2.0, unit="ms", note=""):
    ratio = b / a if a > 0 else float("inf")
    if ceiling is None:
        verdict = note or "(figure only)"
        ceil = "-"
    else:
        ceil = "<= %.1f" % ceiling
        verdict = "met" if ratio <= ceiling else "NOT met"
    print("%-40s %12.2f %12.2f %8.2f  %-7s %s" %
          (name + " (" + unit + ")", a, b, ratio, ceil, verdict))


def report(small_path, large_path, page_small=None, page_large=None):
    s = json.load(open(small_path))
    b = json.load(open(large_path))
    print("%-40s %12s %12s %8s  %-7s %s" %
          ("figure", "at 100", "at 100k", "ratio", "target", ""))
    for key, name in (("first_page", "GET /v1/models first page"),
                      ("last_page", "GET /v1/models last page"),
                      ("model_get", "GET /v1/models/{id} (big model)")):
        row(name + " p50", pct(s[key], 50), pct(b[key], 50))
        row(name + " p99", pct(s[key], 99), pct(b[key], 99))
    if page_small and page_large:
        ps = json.load(open(page_small))
        pl = json.load(open(page_large))
        row("model page, charts drawn p50", pct(ps, 50), pct(pl, 50))
        row("model page, charts drawn p99", pct(ps, 99), pct(pl, 99))
    for p in (50, 99):
        row("the page's metrics?points=1280 p%d" % p, pct(s["points"], p),
            pct(b["points"], p), None,
            note="(part of the page load; reads every epoch once)")
    row("metrics read-back p50", pct(s["readback"], 50),
        pct(b["readback"], 50), None, note="(excepted: size grows 1000x)")
    rate = [x["readback_bytes"] / pct(x["readback"], 50) / 1000.0
            for x in (s, b)]
    row("metrics read-back rate", rate[0], rate[1], None, "MB/s",
        "(figure only)")
    q = b["readback_quarters"]
    steady = max(q) / min(q) if min(q) > 0 else float("inf")
    print("%-40s %s -> slowest/fastest %.2f (target <= 2.0: %s)" %
          ("read-back at 100k, ms per quarter", " ".join("%.0f" % x for x in q),
           steady, "met" if steady <= 2.0 else "NOT met"))
    for x, label in ((s, "100"), (b, "100k")):
        print("%-40s VmHWM %d -> %d KiB (+%d); of it RssFile %d -> %d KiB "
              "(+%d), RssAnon %d -> peak %d KiB (+%d)" %
              ("chubd memory, metrics reads at " + label,
               x["hwm_before_kb"], x["hwm_after_kb"],
               x["hwm_after_kb"] - x["hwm_before_kb"],
               x["file_before_kb"], x["file_after_kb"],
               x["file_after_kb"] - x["file_before_kb"],
               x["anon_before_kb"], x["anon_peak_kb"],
               x["anon_peak_kb"] - x["anon_before_kb"]))
    print("%-40s %s" % ("", "(RssFile: database pages SQLite maps, "
                              "shared with the page cache)"))
    ga = s["anon_peak_kb"] - s["anon_before_kb"]
    gb = b["anon_peak_kb"] - b["anon_before_kb"]
    flat = gb <= max(2 * ga, 4096)
    print("%-40s +%d KiB at 100k vs +%d KiB at 100 (target: flat, within "
          "2x or 4 MiB: %s)" % ("metrics reads, anonymous memory growth",
                                gb, ga, "met" if flat else "NOT met"))
    print("walk of the whole list in pages of 100: %.2f s at 100, %.2f s at "
          "100k" % (s["walk_s"], b["walk_s"]))


def main(argv):
    if len(argv) >= 7 and argv[0] == "run":
        n = int(argv[7]) if len(argv) > 7 else 1000
        run(argv[1], argv[2], int(argv[3]), argv[4], int(argv[5]), argv[6], n)
    elif len(argv) in (3, 5) and argv[0] == "report":
        report(*argv[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
