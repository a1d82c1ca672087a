-- wrk script: Stripe deliveries of 2 to 4 KB, each signed at the moment it is sent (HMAC-SHA256
-- from libcrypto through LuaJIT's FFI). In "mixed" mode 20 % are redeliveries of an id this
-- thread sent before, signed afresh, as Stripe's retries are; in "duplicates" mode every request
-- redelivers one of the ids listed in a file (ids the gateway stored in an earlier run).
--
-- The load generator shares the cores with the system it measures, so a request costs it as
-- little as the load allows: the parts of an event around its id are built once per thread,
-- the signature is computed over those parts in place with the key set up once, and the
-- request is one string built in one go.
--
-- Environment: BENCH_SECRET, BENCH_RUN (a label that makes the ids of a run unique),
-- BENCH_MODE (mixed | duplicates), BENCH_IDS (duplicates: the file of ids, one per line).

local ffi = require("ffi")
local bit = require("bit")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
typedef struct hmac_ctx_st HMAC_CTX;
const EVP_MD *EVP_sha256(void);
HMAC_CTX *HMAC_CTX_new(void);
int HMAC_Init_ex(HMAC_CTX *ctx, const void *key, int key_len, const EVP_MD *md, void *engine);
int HMAC_Update(HMAC_CTX *ctx, const unsigned char *data, size_t len);
int HMAC_Final(HMAC_CTX *ctx, unsigned char *md, unsigned int *len);
]]
local crypto = ffi.load("libcrypto.so.3")

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

local mac = ffi.new("unsigned char[32]")
local mac_len = ffi.new("unsigned int[1]")
local digits = ffi.new("const char[17]", "0123456789abcdef")
local hex = ffi.new("char[64]")
local hmac

-- Each piece of the signed payload `t.body` goes through the HMAC where it lies.
local function sign(t, head, id, tail)
  crypto.HMAC_Init_ex(hmac, nil, 0, nil, nil)  -- the same key and digest as before
  crypto.HMAC_Update(hmac, t, #t)
  crypto.HMAC_Update(hmac, ".", 1)
  crypto.HMAC_Update(hmac, head, #head)
  crypto.HMAC_Update(hmac, id, #id)
  crypto.HMAC_Update(hmac, tail, #tail)
  crypto.HMAC_Final(hmac, mac, mac_len)
  for i = 0, 31 do
    hex[2 * i] = digits[bit.rshift(mac[i], 4)]
    hex[2 * i + 1] = digits[bit.band(mac[i], 15)]
  end
  return ffi.string(hex, 64)
end

local head = '{"id":"'
local tails = {}
local request_line

function init(args)
  sent_new = 0
  sent_again = 0
  accepted = 0
  unexpected = ""
  recent = {}
  math.randomseed(os.time() * 1000 + tid)
  hmac = crypto.HMAC_CTX_new()
  crypto.HMAC_Init_ex(hmac, secret, #secret, crypto.EVP_sha256(), nil)
  -- 256 event bodies after the id, of 2 to 4 KB in all (a description of 1,700 to 4,096 bytes).
  local padding = string.rep("abcdefghijklmnopqrstuvwxyz012345", 64)  -- 2 KiB
  for i = 1, 256 do
    tails[i] = '","object":"event","api_version":"2024-06-20","created":' .. os.time() ..
        ',"type":"payment_intent.succeeded","livemode":false,"pending_webhooks":1,' ..
        '"data":{"object":{"id":"pi_3PxBench","object":"payment_intent","amount":2000,' ..
        '"currency":"usd","status":"succeeded","metadata":{"order_id":"6735"},"description":"' ..
        string.sub(padding, 1, math.random(1700, 2048)) ..
        string.sub(padding, 1, math.random(0, 2048)) .. '"}}}'
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
  local tail = tails[math.random(256)]
  local t = tostring(os.time())
  return request_line .. t .. ",v1=" .. sign(t, head, id, tail) .. "\r\nContent-Length: " ..
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
    "p99=%d p999=%d unexpected=%s\n",
    summary.requests, summary.duration / 1e6, new, again, ok, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    unexpected == "" and "none" or unexpected))
end
