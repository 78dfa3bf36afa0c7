#!/bin/sh
# The README's example, as compiled from README.md, run against the real
# chubd: the hub must end up with one trained model holding 3 epochs of
# metrics and the final weights the example wrote.
# Usage: readme_test.sh CHUBD_BIN EXAMPLE_BIN
set -eu
. "$(dirname "$0")/../support/chubd.sh"
chubd_start "$1"
work=$CHUBD_WORK/run
mkdir -p "$work"
export CHUB_TESTING=1 CHUB_CONFIG_DIR="$work/config" CHUB_RUNS_DIR="$work/runs"
export CHUB_API_ROOT="$CHUBD_URL" CHUB_API_KEY="$CHUBD_KEY"
(cd "$work" && "$2") >"$work/out.log" 2>&1 || { cat "$work/out.log"; exit 1; }
cat "$work/out.log"
grep -q "View model at $CHUBD_URL/models/" "$work/out.log"

models=$(curl -fsS -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/models")
id=$(printf '%s' "$models" | node -e '
  const d = JSON.parse(require("fs").readFileSync(0, "utf8")).data;
  if (d.results.length !== 1) { console.error("models:", d.results.length); process.exit(1); }
  console.log(d.results[0].id);')
model=$(curl -fsS -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/models/$id")
metrics=$(curl -fsS -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/models/$id/metrics")
best=$(curl -fsS -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/models/$id/weights/best" | sha256sum | cut -d' ' -f1)
want=$(sha256sum "$work/best.bin" | cut -d' ' -f1)
printf '%s\n%s\n' "$model" "$metrics" | node -e '
  const [m, e] = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
  const fail = (s) => { console.error("readme_test: " + s); process.exit(1); };
  if (m.data.status !== "trained") fail("status " + m.data.status + ", want trained");
  const epochs = e.data.map((r) => r.epoch).join(",");
  if (epochs !== "0,1,2") fail("epochs " + epochs + ", want 0,1,2");
  if (e.data[2].metrics["metrics/accuracy_top1"] !== 0.7) fail("epoch 2 accuracy " + JSON.stringify(e.data[2].metrics));
  if (!("train/loss" in e.data[0].metrics)) fail("no train/loss at epoch 0");'
[ "$best" = "$want" ] || { echo "readme_test: final weights sha256 $best, local best.bin $want"; exit 1; }
echo "readme example: model $id trained, epochs 0,1,2, final weights match"
