-- metrics.lua - wrk script: POST a metrics upload (hub-api.md wire format)
-- per request, each with a new epoch number, so every request is a real
-- insert (not an idempotent replace). Epochs are unique across threads:
-- thread t uses t*100000000 + BENCH_EPOCH_BASE + its own counter; runs on
-- one model give each a different BENCH_EPOCH_BASE (below 100000000).
-- Environment: BENCH_PATH (e.g. /v1/models/ID), BENCH_KEY (x-api-key),
-- BENCH_EPOCH_BASE (0 when unset).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local counter = 0
local base = 0
local path = os.getenv("BENCH_PATH") or "/"
local key = os.getenv("BENCH_KEY") or ""
local offset = tonumber(os.getenv("BENCH_EPOCH_BASE") or "0") or 0

function init(args)
  base = (tonumber(tid) or 0) * 100000000 + offset
end

function request()
  local epoch = base + counter
  counter = counter + 1
  local body = string.format(
    '{"type": "metrics", "metrics": {"%d": "{\\"train/box_loss\\": 1.25, ' ..
    '\\"train/cls_loss\\": 0.75, \\"metrics/mAP50-95(B)\\": 0.31, ' ..
    '\\"metrics/precision(B)\\": 0.6, \\"lr/pg0\\": 0.001}"}}', epoch)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["x-api-key"] = key,
  }, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local non2xx = summary.errors.status
  local errs = summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d sockerr=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99),
    summary.requests, non2xx, errs))
end
