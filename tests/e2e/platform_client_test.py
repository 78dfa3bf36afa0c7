#!/usr/bin/env python3
"""platform_client_test.py - a whole Ultralytics Platform run against chubd,
played the way ultralytics 8.4 plays it (ultralytics-clients.md part A,
utils/callbacks/platform.py), with Python's urllib only.

Usage: platform_client_test.py --chubd PATH

Starts the real chubd (127.0.0.1:0, a fresh data directory, a key made with
`chubd --data DIR keys create`), then, as the client does with
ULTRALYTICS_PLATFORM_URL=http://127.0.0.1:PORT and ULTRALYTICS_API_KEY=KEY:
  - every request to {root}/api/webhooks with `Authorization: Bearer KEY`,
    JSON with NaN/inf turned into null, retried on 408/429/5xx and network
    errors (sleeps shortened), a 4xx logged from the body's `error`;
  - training_started (every train arg stringified, `data` raw), reading
    modelId, modelSlug and cancelled;
  - console_output chunks of timestamped lines, one of them sent twice with
    the same chunkId (an answer lost on the way back);
  - epoch_end per epoch with metrics (a NaN among them), system metrics,
    fitness, modelInfo at epoch 0, and once more after the final val with
    epoch = last + 1;
  - the two-step upload of best.pt: POST /models/upload for uploadUrl, then
    a PUT of the bytes to it with Content-Type application/octet-stream and
    no auth; then training_complete with results, class names and plots;
  - the ul:// HEAD of the model, redirects not followed, and the Location
    fetched without auth.
Then it checks what a person sees through chubd's own API: the model in
/v1/models (trained, its config), its metrics per epoch in
/v1/models/{id}/metrics (the retried chunk once in its console), the
checkpoint byte for byte, and the project in /v1/projects with the run in
/v1/models?project=ID. Every wait is bounded; chubd is stopped by its PID
on every exit path.
"""

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download_urls_test import Chubd, Fail, check, keyed  # noqa: E402

PROJECT = "chub-e2e"
RUN = "train"
EPOCHS = 3


def say(msg):
    print("platform_client: " + msg, flush=True)


def nan_to_null(x):
    """As the client does before sending: NaN and inf become null."""
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: nan_to_null(v) for k, v in x.items()}
    if isinstance(x, list):
        return [nan_to_null(v) for v in x]
    return x


class Platform:
    """The client side of part A: one API root, one key."""

    def __init__(self, root, key):
        self.api = root.rstrip("/") + "/api/webhooks"
        self.key = key
        self.model_id = None
        self.errors = []

    def _send(self, path, body, tries):
        data = json.dumps(nan_to_null(body), allow_nan=False).encode()
        for attempt in range(tries):
            req = urllib.request.Request(
                self.api + path, data=data, method="POST",
                headers={"Authorization": "Bearer " + self.key,
                         "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    try:
                        return json.loads(r.read())
                    except ValueError:
                        pass  # a non-JSON 2xx is retried
            except urllib.error.HTTPError as e:
                text = e.read()
                if 400 <= e.code < 500 and e.code not in (408, 429):
                    try:
                        self.errors.append(json.loads(text).get("error"))
                    except ValueError:
                        self.errors.append(None)
                    return None
            except urllib.error.URLError:
                pass
            if attempt + 1 < tries:
                time.sleep(0.2 * 2 ** attempt)  # 2/4/8 s, shortened
        return None

    def event(self, event, data, tries):
        body = {"event": event, "project": PROJECT, "name": RUN,
                "data": data}
        if self.model_id:
            body["modelId"] = self.model_id
        return self._send("/training/metrics", body, tries)

    def upload(self, filename, payload):
        body = {"project": PROJECT, "name": RUN, "filename": filename}
        if self.model_id:
            body["modelId"] = self.model_id
        answer = self._send("/models/upload", body, 3)
        check(answer is not None and "uploadUrl" in answer,
              "models/upload gave no uploadUrl: %r (errors %r)" %
              (answer, self.errors))
        req = urllib.request.Request(
            answer["uploadUrl"], data=payload, method="PUT",
            headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=600) as r:
            check(200 <= r.status < 300, "PUT uploadUrl: %d" % r.status)
        return answer


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def console_chunk(lines):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return {"chunkId": uuid.uuid4().hex,
            "content": "".join("[%s] %s\n" % (stamp, s) for s in lines),
            "lineCount": len(lines)}


def play_run(pf, weights):
    train_args = {"model": "yolo11n.pt", "data": "coco8.yaml",
                  "epochs": str(EPOCHS), "batch": "16", "imgsz": "640",
                  "device": "cpu", "project": PROJECT, "name": RUN,
                  "amp": "True", "lr0": "0.01"}
    env = {"ultralytics": "8.4.53", "python": sys.version.split()[0],
           "hostname": "e2e", "os": sys.platform, "argv": sys.argv[:1],
           "cpu": {"count": os.cpu_count()}, "gpu": None}
    started = pf.event("training_started",
                       {"trainArgs": train_args, "epochs": EPOCHS,
                        "device": "cpu", "environment": env}, 4)
    check(started is not None, "training_started failed: %r" % pf.errors)
    check(re.fullmatch(r"[A-Za-z0-9]{20}", started.get("modelId", "")),
          "training_started modelId: %r" % started)
    check(started.get("modelSlug") == RUN and started.get("cancelled") is
          False, "training_started answer: %r" % started)
    pf.model_id = started["modelId"]

    chunks = []
    first = console_chunk(["Ultralytics 8.4.53 Python CPU",
                           "train: Scanning coco8/labels/train... 4 images"])
    for c in (first, first):  # the retry after a lost answer
        check(pf.event("console_output", c, 2) is not None,
              "console_output: %r" % pf.errors)
    chunks.append(first)
    for epoch in range(EPOCHS):
        c = console_chunk(["%d/%d 0G 1.2 2.3 1.1 12 640" % (epoch + 1,
                                                              EPOCHS)])
        check(pf.event("console_output", c, 2) is not None,
              "console_output: %r" % pf.errors)
        chunks.append(c)
        data = {"epoch": epoch,
                "metrics": {"train/box_loss": 1.5 - 0.2 * epoch,
                            "train/cls_loss": 2.0 - 0.3 * epoch,
                            "metrics/mAP50(B)": 0.3 + 0.1 * epoch,
                            "metrics/mAP50-95(B)": 0.2 + 0.05 * epoch,
                            "val/box_loss": float("nan") if epoch == 1
                            else 1.4 - 0.1 * epoch,
                            "lr/pg0": 0.01},
                "system": {"cpu": 30.5, "ram": 41.0, "disk": 12.0,
                           "network": {"recv": 1, "sent": 2}, "gpus": []},
                "fitness": 0.25 + 0.05 * epoch,
                "best_fitness": 0.25 + 0.05 * epoch}
        if epoch == 0:
            data["modelInfo"] = {"parameters": 2590620, "gflops": 6.4,
                                 "speedMs": 1.7}
        answer = pf.event("epoch_end", data, 1)
        check(answer is not None and answer.get("cancelled") is False,
              "epoch_end %d: %r %r" % (epoch, answer, pf.errors))
    # Once more after the final val, with epoch = last + 1.
    answer = pf.event("epoch_end",
                      {"epoch": EPOCHS,
                       "metrics": {"metrics/mAP50-95(B)": 0.31}}, 1)
    check(answer is not None, "final epoch_end: %r" % pf.errors)

    pf.upload("best.pt", weights)
    answer = pf.event("training_complete", {
        "results": {"metrics": {"metrics/mAP50-95(B)": 0.31},
                    "bestEpoch": EPOCHS - 1, "bestFitness": 0.35,
                    "modelPath": None, "modelSize": len(weights)},
        "classNames": ["person", "car"],
        "plots": {"pr_curve": {"x": [i / 100 for i in range(101)],
                               "y": [1 - i / 100 for i in range(101)],
                               "ap": [0.5, 0.4]},
                  "confusion_matrix": {"matrix": [[2, 0], [1, 3]]}}}, 4)
    check(answer is not None, "training_complete: %r" % pf.errors)
    check(not pf.errors, "4xx answers during the run: %r" % pf.errors)
    return chunks


def check_hub(hub, key, mid, chunks, weights):
    status, _, body = keyed("%s/v1/models?limit=100" % hub.url, key)
    check(status == 200, "GET /v1/models: %d" % status)
    models = {m["id"]: m for m in json.loads(body)["data"]["results"]}
    check(mid in models, "run %s not in /v1/models" % mid)
    m = models[mid]
    check(m["status"] == "trained", "status %r" % m["status"])
    check(m["meta"]["name"] == RUN and m["epochs"] == EPOCHS and
          m["batch_size"] == 16 and m["data"] == "coco8.yaml",
          "model fields: %r" % {k: m.get(k) for k in
                                ("meta", "epochs", "batch_size", "data")})

    status, _, body = keyed("%s/v1/models/%s/metrics" % (hub.url, mid), key)
    check(status == 200, "GET metrics: %d" % status)
    rows = json.loads(body)["data"]
    check([r["epoch"] for r in rows] == list(range(EPOCHS + 1)),
          "epochs stored: %r" % [r["epoch"] for r in rows])
    check(abs(rows[2]["metrics"]["metrics/mAP50-95(B)"] - 0.3) < 1e-9,
          "epoch 2 mAP: %r" % rows[2]["metrics"])
    check("val/box_loss" not in rows[1]["metrics"],
          "a NaN (null) was stored: %r" % rows[1]["metrics"])
    check(rows[0]["metrics"].get("model/parameters") == 2590620,
          "modelInfo at epoch 0: %r" % rows[0]["metrics"])

    status, _, body = keyed("%s/v1/models/%s/console" % (hub.url, mid), key)
    check(status == 200, "GET console: %d" % status)
    got = json.loads(body)["data"]["chunks"]
    check([c["chunkId"] for c in got] == [c["chunkId"] for c in chunks],
          "console chunks (the retried one once, in order): %r" %
          [c["chunkId"] for c in got])
    check(got[0]["content"] == chunks[0]["content"], "console content")

    sha = hashlib.sha256(weights).hexdigest()
    status, _, body = keyed("%s/v1/models/%s/weights/best" % (hub.url, mid),
                            key)
    check(status == 200 and body == weights,
          "best weights: %d, %d bytes, sha256 %s (want %s)" %
          (status, len(body), hashlib.sha256(body).hexdigest(), sha))

    # ul://owner/PROJECT/RUN, as the client resolves it.
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(
        "%s/api/webhooks/models/owner/%s/%s/download" % (hub.url, PROJECT,
                                                         RUN),
        method="HEAD", headers={"Authorization": "Bearer " + key})
    try:
        r = opener.open(req, timeout=30)
        raise Fail("ul:// HEAD answered %d, expected a redirect" % r.status)
    except urllib.error.HTTPError as e:
        check(300 <= e.code < 400, "ul:// HEAD: %d" % e.code)
        location = e.headers.get("Location")
    check(location and location.startswith(hub.url),
          "Location: %r" % location)
    with urllib.request.urlopen(location, timeout=30) as r:
        check(r.read() == weights, "ul:// Location bytes differ")

    status, _, body = keyed("%s/v1/projects" % hub.url, key)
    check(status == 200, "GET /v1/projects: %d" % status)
    projects = json.loads(body)["data"]["results"]
    mine = [p for p in projects if p["name"] == PROJECT]
    check(len(mine) == 1 and mine[0]["models"] == 1,
          "project in /v1/projects: %r" % projects)
    status, _, body = keyed("%s/v1/models?project=%s" % (hub.url,
                                                         mine[0]["id"]), key)
    check(status == 200 and
          [m["id"] for m in json.loads(body)["data"]["results"]] == [mid],
          "/v1/models?project=: %d %r" % (status, body[:300]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chubd", required=True)
    args = ap.parse_args()
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
              "all_proxy", "ALL_PROXY"):
        os.environ.pop(k, None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = tempfile.mkdtemp(prefix="chub-platform-client-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    hub = Chubd(args.chubd, data, tmp)
    ok = False
    try:
        key = hub.cli("keys", "create", "owner").strip()
        check(re.fullmatch(r"[A-Za-z0-9]{42}", key) is not None,
              "keys create printed %r" % key)
        hub.start()
        weights = os.urandom(300 * 1024)
        pf = Platform(hub.url + "/", key)
        chunks = play_run(pf, weights)
        say("run %s played" % pf.model_id)
        check_hub(hub, key, pf.model_id, chunks, weights)
        rc = hub.stop()
        check(rc == 0, "chubd exited %d on SIGTERM" % rc)
        ok = True
    except (Fail, urllib.error.HTTPError, urllib.error.URLError,
            KeyError, ValueError, TypeError, IndexError) as e:
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
