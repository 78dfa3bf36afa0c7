#!/bin/sh
# libtorch_fashion_mnist_test.sh - the C++ (LibTorch) example trainer
# against the real chubd.
#
# Usage: libtorch_fashion_mnist_test.sh CHUBD_BIN CHUB_BIN TRAINER_BIN EVAL_BIN CHUBD_SH
#
# Trains 2 epochs on 3000 images with checkpoints and metrics sent at once,
# then checks through chubd's JSON what the model page shows: the model is
# trained with a heartbeat, every epoch's metrics under the C example's
# names (the values the trainer printed), an epoch checkpoint and the final
# one, whose bytes are the local best.pt. Then best.pt is downloaded from
# chubd (with the key, and through the signed `weights` URL), loaded into
# the same C++ network by libtorch_fashion_mnist_eval and measured on the
# same test set: its top-1 must be the accuracy the run reported for it.
# Then a hub model resumed from that run's last.pt. Also the trainer's
# answers to a bad flag and a missing dataset.
set -eu
CHUB=$2 TRAINER=$3 EVAL=$4
# shellcheck source=/dev/null # the path comes from CMake
. "$5"
chubd_start "$1"
work=$CHUBD_WORK/run
mkdir -p "$work"
export CHUB_TESTING=1 CHUB_CONFIG_DIR="$work/config" CHUB_RUNS_DIR="$work/runs"
export CHUB_API_ROOT="$CHUBD_URL" CHUB_API_KEY="$CHUBD_KEY"
unset CHUB_WEB_ROOT CHUB_MODE CHUB_HUB FASHION_MNIST_DIR

fail() {
  echo "libtorch_fashion_mnist_test: FAIL: $*" >&2
  [ -f "$work/train.log" ] && { echo "---- train.log" >&2; cat "$work/train.log" >&2; }
  echo "---- chubd.log" >&2
  tail -n 40 "$CHUBD_LOG" >&2
  exit 1
}

# Flags: the C example's answers.
rc=0
"$TRAINER" --epoch 3 >"$work/flag.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown flag '--epoch'" "$work/flag.log" &&
  grep -q "usage:" "$work/flag.log" || fail "--epoch: exit $rc, $(cat "$work/flag.log")"
rc=0
"$TRAINER" --model resnet.cfg >"$work/flag.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "cnn-small.cfg" "$work/flag.log" || fail "--model resnet.cfg: exit $rc"
mkdir "$work/empty"
rc=0
"$TRAINER" --data-dir "$work/empty" --out "$work/out-missing" >"$work/flag.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "cannot open $work/empty/train-labels-idx1-ubyte.gz" "$work/flag.log" ||
  fail "missing dataset: exit $rc, $(cat "$work/flag.log")"
"$TRAINER" --help | grep -q -- "--data-dir DIR" || fail "--help"

# Every checkpoint and every epoch's metrics go at once.
"$CHUB" settings rate_limit_ckpt=0 rate_limit_metrics=0 >/dev/null
started=$(date +%s)
timeout 600 "$TRAINER" --limit 3000 --epochs 2 --seed 7 --out "$work/out" \
  >"$work/train.log" 2>&1 || fail "the trainer exited $?"
echo "libtorch_fashion_mnist_test: trained in $(($(date +%s) - started)) s"
cat "$work/train.log"
grep -q "epoch   2/2" "$work/train.log" || fail "no line for epoch 2"
id=$(sed -n "s|.*View model at $CHUBD_URL/models/\([A-Za-z0-9]*\).*|\1|p" "$work/train.log" | head -n1)
[ -n "$id" ] || fail "no 'View model at $CHUBD_URL/models/ID' line"

get() { curl -fsS --max-time 30 -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL$1"; }
get "/v1/models/$id" >"$work/model.json" || fail "GET /v1/models/$id"
get "/v1/models/$id/metrics" >"$work/metrics.json" || fail "GET /v1/models/$id/metrics"
get "/v1/models/$id/weights/best" >"$work/best-key.pt" || fail "GET /v1/models/$id/weights/best"
weights_url=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["weights"])' <"$work/model.json")
case "$weights_url" in "$CHUBD_URL"/*) ;; *) fail "MODEL weights is '$weights_url'" ;; esac
curl -fsS --max-time 30 "$weights_url" >"$work/best-signed.pt" || fail "GET $weights_url"
cmp -s "$work/best-key.pt" "$work/best-signed.pt" || fail "the signed URL and the keyed download differ"
cmp -s "$work/best-key.pt" "$work/out/best.pt" || fail "the hub's best is not the local best.pt"

timeout 300 "$EVAL" "$work/best-key.pt" >"$work/eval.log" 2>&1 || { cat "$work/eval.log"; fail "the evaluation exited $?"; }
cat "$work/eval.log"

python3 - "$work" "$(sha256sum "$work/out/best.pt" | cut -d' ' -f1)" <<'PY' || fail "the checks above"
import json, re, sys
work, best_sha = sys.argv[1], sys.argv[2]
model = json.load(open(f"{work}/model.json"))["data"]
rows = json.load(open(f"{work}/metrics.json"))["data"]
train = open(f"{work}/train.log").read()
evaluation = open(f"{work}/eval.log").read()
problems = []
def check(ok, what):
    if not ok:
        problems.append(what)

check(model["status"] == "trained", f"status {model['status']}, want trained")
check(bool((model.get("agent") or {}).get("last_heartbeat")), "no heartbeat")

# Every epoch's metrics, as the trainer printed them.
check([r["epoch"] for r in rows] == [0, 1], f"epochs {[r['epoch'] for r in rows]}")
printed = [float(m) for m in re.findall(r"epoch +\d+/2 .* top1 +([0-9.]+)%", train)]
check(len(printed) == 2, f"printed top1 lines: {printed}")
params = int(re.search(r"(\d+) parameters", train).group(1))
for r, top1_printed in zip(rows, printed):
    m = r["metrics"]
    for name in ("train/loss", "val/loss", "metrics/accuracy_top1", "metrics/accuracy_top5"):
        check(isinstance(m.get(name), (int, float)), f"epoch {r['epoch']} lacks {name}")
    top1 = m["metrics/accuracy_top1"]
    check(0.3 <= top1 <= 1 and top1 <= m["metrics/accuracy_top5"] <= 1, f"epoch {r['epoch']}: {m}")
    check(f"{top1 * 100:.2f}" == f"{top1_printed:.2f}", f"epoch {r['epoch']}: hub top1 {top1}, printed {top1_printed}%")
check(rows[0]["metrics"].get("model/parameters") == params, f"model/parameters {rows[0]['metrics'].get('model/parameters')}, printed {params}")
check("model/GFLOPs" in rows[0]["metrics"], "no model/GFLOPs at epoch 0")

# Checkpoints: each epoch's last.pt, and best.pt as the final model.
types = [c["type"] for c in model["checkpoints"]]
check(types.count("epoch") >= 1, f"checkpoint types {types}")
final = [c for c in model["checkpoints"] if c["type"] == "final"]
check(len(final) == 1 and final[0]["sha256"] == best_sha, f"final checkpoints {final}, local best.pt {best_sha}")

# The downloaded best.pt, measured again, scores what the run reported.
reported = max(r["metrics"]["metrics/accuracy_top1"] for r in rows)
got = re.search(r"measured top1 ([0-9.]+) \((\d+)/(\d+)\)", evaluation)
check(got is not None, "no measured top1 in the evaluation")
if got:
    hits, count = int(got.group(2)), int(got.group(3))
    check(count == 10000, f"evaluated {count} images, want 10000")
    check(hits / count == reported, f"best.pt measures {hits}/{count}, the run reported {reported}")
    best_printed = re.search(r"best top1 ([0-9.]+)%", train).group(1)
    check(f"{hits / count * 100:.2f}" == best_printed, f"measured {hits}/{count}, trainer printed best {best_printed}%")
    print(f"libtorch_fashion_mnist_test: model {model['id']}: reported top1 {reported}, "
          f"downloaded best.pt measures {hits}/{count} = {hits / count}")
for p in problems:
    print("libtorch_fashion_mnist_test:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
# Resuming: a hub model whose epoch checkpoint is the last.pt above (epoch
# 2 of 2) continues with the hub's epochs (3) from epoch 3, Adam's state
# and all, and reports only that epoch.
config='{"config": {"batchSize": 64, "epochs": 3, "imageSize": 28, "patience": 3, "device": "cpu", "cache": "ram"},
 "dataset": {"name": "fashion-mnist"}, "lineage": {"architecture": {"name": "cnn"}, "parent": {"name": "cnn.pt"}},
 "meta": {"name": "cnn.cfg"}}'
id2=$(curl -fsS --max-time 30 -H "x-api-key: $CHUBD_KEY" -H "Content-Type: application/json" \
  -d "$config" "$CHUBD_URL/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])') ||
  fail "POST /v1/models"
curl -fsS --max-time 30 -H "x-api-key: $CHUBD_KEY" -F epoch=1 -F type=epoch -F isBest=True \
  -F "file=@$work/out/last.pt;filename=last.pt" "$CHUBD_URL/v1/models/$id2/upload" >/dev/null ||
  fail "uploading last.pt to $id2"
timeout 600 "$TRAINER" --model "$CHUBD_URL/models/$id2" --limit 3000 --seed 7 --out "$work/resume" \
  >"$work/train.log" 2>&1 || fail "the resumed trainer exited $?"
cat "$work/train.log"
grep -q "resuming $CHUBD_URL/models/$id2 from epoch 3" "$work/train.log" || fail "no 'resuming ... from epoch 3'"
grep -q "epoch   3/3" "$work/train.log" || fail "no line for epoch 3 of 3"
! grep -q "epoch   [12]/3" "$work/train.log" || fail "epochs 1 or 2 ran again"
epochs=$(get "/v1/models/$id2/metrics" | python3 -c 'import json,sys; print([r["epoch"] for r in json.load(sys.stdin)["data"]])')
[ "$epochs" = "[2]" ] || fail "the resumed model holds epochs $epochs, want [2]"
status=$(get "/v1/models/$id2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["status"])')
[ "$status" = trained ] || fail "the resumed model is $status, want trained"

echo "libtorch_fashion_mnist_test: ok"
