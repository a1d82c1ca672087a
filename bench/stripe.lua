-- wrk script: Stripe deliveries of 2 to 4 KB, each with a valid signature made for it. In "mixed"
-- mode 20 % are redeliveries of an id this thread sent before, signed afresh, as Stripe's
-- retries are; in "duplicates" mode every request redelivers one of the ids listed in a file
-- (ids the gateway stored in an earlier run).
--
-- The load generator shares the cores with the system it measures, so a request costs it as
-- little as the load allows. Each thread builds 256 event bodies at the start; an event is one
-- of them with its id as the last member. The events are pre-signed up to the id: for each
-- body, the HMAC-SHA256 of `t.` and the body up to the id is computed once per second (t, the
-- signature's timestamp, changes every second), so a request hashes only its id and the two
-- closing bytes, and the request is one string built in one go.
--
-- Environment: BENCH_SECRET, BENCH_RUN (a label that makes the ids of a run unique),
-- BENCH_MODE (mixed | duplicates), BENCH_IDS (duplicates: the file of ids, one per line).

-- The scripts' own modules sit beside them.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local hmac = require("hmac")

local secret = os.getenv("BENCH_SECRET")
local label = os.getenv("BENCH_RUN")
local mode = os.getenv("BENCH_MODE") or "mixed"
local ids_file = os.getenv("BENCH_IDS")

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local BODIES = 256
local key
local presigned = hmac.states(BODIES)  -- after the key, `t.` and a body's head
local presigned_at = {}  -- the t each body's state was made for
local work = hmac.states(1)
local heads = {}  -- each body up to its id
local tail = '"}'

-- The signature of `t.<head of body b><id>"}`, from body b's state for t.
local function sign(t, b, id)
  if presigned_at[b] ~= t then
    hmac.copy(presigned + b, key.inner)
    hmac.update(presigned + b, t)
    hmac.update(presigned + b, ".")
    hmac.update(presigned + b, heads[b + 1])
    presigned_at[b] = t
  end
  hmac.copy(work, presigned + b)
  hmac.update(work, id)
  hmac.update(work, tail)
  return hmac.hex(key, work)
end

local request_line

function init(args)
  sent_new = 0
  sent_again = 0
  accepted = 0
  unexpected = ""
  recent = {}
  math.randomseed(os.time() * 1000 + tid)
  key = hmac.key(secret)
  -- 256 event bodies up to the id, of 2 to 4 KB in all (a description of 1,700 to 4,096 bytes).
  local padding = string.rep("abcdefghijklmnopqrstuvwxyz012345", 64)  -- 2 KiB
  for i = 1, BODIES do
    heads[i] = '{"object":"event","api_version":"2024-06-20","created":' .. os.time() ..
        ',"type":"payment_intent.succeeded","livemode":false,"pending_webhooks":1,' ..
        '"data":{"object":{"id":"pi_3PxBench","object":"payment_intent","amount":2000,' ..
        '"currency":"usd","status":"succeeded","metadata":{"order_id":"6735"},"description":"' ..
        string.sub(padding, 1, math.random(1700, 2048)) ..
        string.sub(padding, 1, math.random(0, 2048)) .. '"}},"id":"'
  end
  -- wrk.init has set the Host header before calling init.
  request_line = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. wrk.headers["Host"] ..
      "\r\nContent-Type: application/json\r\nStripe-Signature: t="
  stored = {}
  if mode == "duplicates" then
    for line in io.lines(ids_file) do stored[#stored + 1] = line end
  end
end

local function next_id()
  if mode == "duplicates" then
    sent_again = sent_again + 1
    return stored[math.random(#stored)]
  end
  if sent_new > 0 and math.random() < 0.2 then
    sent_again = sent_again + 1
    return recent[math.random(#recent)]
  end
  sent_new = sent_new + 1
  local id = "evt_" .. label .. "_" .. tid .. "_" .. sent_new
  if #recent < 1000 then recent[#recent + 1] = id else recent[math.random(1000)] = id end
  return id
end

function request()
  local id = next_id()
  local b = math.random(BODIES) - 1
  local head = heads[b + 1]
  local t = tostring(os.time())
  return request_line .. t .. ",v1=" .. sign(t, b, id) .. "\r\nContent-Length: " ..
      (#head + #id + #tail) .. "\r\n\r\n" .. head .. id .. tail
end

-- A 202 acknowledges a new event: it must be stored. Ids whose answer never arrived (in flight
-- when the run ends) may or may not be.
-- In "duplicates" mode every id is stored already, so a 202 is a fault: its id is reported.
function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
    if mode == "duplicates" then
      unexpected = unexpected .. (body:match('"idempotency_key":"webhook:([^"]+)"') or "?") .. ","
    end
  end
end

function done(summary, latency, requests)
  local new, again, ok, unexpected = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    new = new + t:get("sent_new")
    again = again + t:get("sent_again")
    ok = ok + t:get("accepted")
    unexpected = unexpected .. t:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f new=%d again=%d accepted=%d non2xx=%d errors=%d p50=%d " ..
    "p99=%d p999=%d max=%d unexpected=%s\n",
    summary.requests, summary.duration / 1e6, new, again, ok, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    unexpected == "" and "none" or unexpected))
end
