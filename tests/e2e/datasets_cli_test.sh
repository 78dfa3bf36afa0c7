#!/bin/sh
# datasets_cli_test.sh - `chub push-dataset` and `chub datasets` against
# the real chubd: a zip lands as a dataset whose signed URL gives the same
# bytes back; a file that is not a zip, an empty file and bad command lines
# are refused with the right exit status and nothing is stored.
#
# Usage: datasets_cli_test.sh CHUBD_BIN CHUB_BIN CHUBD_SH
set -u
CHUBD_BIN=$1
CHUB=$2
# shellcheck source=/dev/null # the path comes from CMake
. "$3"

fail() {
  echo "FAIL: $*" >&2
  [ -f "$CHUBD_LOG" ] && tail -n 20 "$CHUBD_LOG" >&2
  exit 1
}

chubd_start "$CHUBD_BIN" || fail "chubd did not start"
W=$CHUBD_WORK
export CHUB_CONFIG_DIR="$W/config" CHUB_TESTING=1
unset CHUB_API_KEY CHUB_API_ROOT CHUB_WEB_ROOT
"$CHUB" settings "api_root=$CHUBD_URL" >/dev/null || fail "settings"
"$CHUB" login "$CHUBD_KEY" >/dev/null 2>&1 || fail "login"

# A small zip with a yaml and two files, made with python's zipfile.
python3 - "$W/shapes.zip" <<'PY' || fail "cannot make the zip"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("shapes/data.yaml", "path: .\ntrain: images\nval: images\nnames: [a]\n")
    z.writestr("shapes/images/a.jpg", b"\xff\xd8" + bytes(range(256)) * 40)
    z.writestr("shapes/labels/a.txt", "0 0.5 0.5 0.2 0.2\n")
PY

out=$("$CHUB" push-dataset "$W/shapes.zip" --name "Shapes v1" 2>&1) ||
  fail "push-dataset of a valid zip: $out"
echo "$out"
id=$(echo "$out" | sed -n 's/^chub: dataset \([A-Za-z0-9]\{20\}\) .*/\1/p')
[ -n "$id" ] || fail "no dataset id in: $out"
sha=$(sha256sum "$W/shapes.zip" | cut -d' ' -f1)
echo "$out" | grep -q "sha256 $sha" || fail "push-dataset did not report the zip's sha256"

list=$("$CHUB" datasets) || fail "chub datasets failed"
echo "$list"
echo "$list" | grep "$id" | grep -q "Shapes v1" || fail "the dataset is not listed"
echo "$list" | grep "$id" | grep -q "ready" || fail "the dataset is not ready"

# The dataset's signed URL gives the same bytes with no key at all.
url=$(curl -s -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/datasets/$id" |
  python3 -c 'import sys,json; print(json.load(sys.stdin)["data"]["url"])') ||
  fail "cannot read the dataset"
curl -s -o "$W/back.zip" "$url" || fail "cannot download $url"
cmp -s "$W/back.zip" "$W/shapes.zip" || fail "the download differs from the zip pushed"

# Not a zip: refused, exit 1, and the hub says why.
head -c 5000 /dev/urandom >"$W/random.zip"
if out=$("$CHUB" push-dataset "$W/random.zip" 2>&1); then
  fail "a file that is not a zip was accepted: $out"
fi
echo "$out" | grep -q "not a zip file" || fail "refusal does not say why: $out"
: >"$W/empty.zip"
"$CHUB" push-dataset "$W/empty.zip" >/dev/null 2>&1 && fail "an empty file was accepted"
"$CHUB" push-dataset "$W/missing.zip" >/dev/null 2>&1 && fail "a missing file was accepted"

# Bad command lines: exit 2.
for args in "" "--name" "a.zip b.zip" "--bogus a.zip"; do
  # shellcheck disable=SC2086 # split on purpose
  "$CHUB" push-dataset $args >/dev/null 2>&1
  [ $? -eq 2 ] || fail "push-dataset $args did not exit 2"
done
"$CHUB" datasets extra >/dev/null 2>&1
[ $? -eq 2 ] || fail "datasets extra did not exit 2"

# Only the one valid zip was stored; a refused push leaves no dataset.
rows=$("$CHUB" datasets | grep -c '^[A-Za-z0-9]\{20\} ')
[ "$rows" -eq 1 ] || fail "expected 1 dataset on the hub, found $rows"
echo "datasets_cli: ok"
