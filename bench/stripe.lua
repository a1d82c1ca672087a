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

local ffi = require("ffi")
local bit = require("bit")
ffi.cdef [[
typedef struct { unsigned int h[8]; unsigned int Nl, Nh; unsigned int data[16];
                 unsigned int num, md_len; } SHA256_CTX;
int SHA256_Init(SHA256_CTX *c);
int SHA256_Update(SHA256_CTX *c, const void *data, size_t len);
int SHA256_Final(unsigned char *md, SHA256_CTX *c);
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

local BODIES = 256
local CTX_SIZE = ffi.sizeof("SHA256_CTX")
local inner_pad = ffi.new("SHA256_CTX")  -- after the key's inner pad (RFC 2104)
local outer_pad = ffi.new("SHA256_CTX")  -- after its outer pad
local presigned = ffi.new("SHA256_CTX[?]", BODIES)  -- after the inner pad, `t.` and a body's head
local presigned_at = {}  -- the t each body's state was made for
local work = ffi.new("SHA256_CTX")
local inner = ffi.new("unsigned char[32]")
local mac = ffi.new("unsigned char[32]")
local digits = ffi.new("const char[17]", "0123456789abcdef")
local hex = ffi.new("char[64]")
local heads = {}  -- each body up to its id
local tail = '"}'

local function key_pads()
  local key = secret
  assert(#key <= 64, "BENCH_SECRET longer than SHA-256's block")
  local ipad, opad = ffi.new("unsigned char[64]"), ffi.new("unsigned char[64]")
  for i = 0, 63 do
    local k = i < #key and key:byte(i + 1) or 0
    ipad[i] = bit.bxor(k, 0x36)
    opad[i] = bit.bxor(k, 0x5c)
  end
  crypto.SHA256_Init(inner_pad)
  crypto.SHA256_Update(inner_pad, ipad, 64)
  crypto.SHA256_Init(outer_pad)
  crypto.SHA256_Update(outer_pad, opad, 64)
end

-- The signature of `t.<head of body b><id>"}`, from body b's state for t.
local function sign(t, b, id)
  if presigned_at[b] ~= t then
    ffi.copy(presigned + b, inner_pad, CTX_SIZE)
    crypto.SHA256_Update(presigned + b, t, #t)
    crypto.SHA256_Update(presigned + b, ".", 1)
    crypto.SHA256_Update(presigned + b, heads[b + 1], #heads[b + 1])
    presigned_at[b] = t
  end
  ffi.copy(work, presigned + b, CTX_SIZE)
  crypto.SHA256_Update(work, id, #id)
  crypto.SHA256_Update(work, tail, #tail)
  crypto.SHA256_Final(inner, work)
  ffi.copy(work, outer_pad, CTX_SIZE)
  crypto.SHA256_Update(work, inner, 32)
  crypto.SHA256_Final(mac, work)
  for i = 0, 31 do
    hex[2 * i] = digits[bit.rshift(mac[i], 4)]
    hex[2 * i + 1] = digits[bit.band(mac[i], 15)]
  end
  return ffi.string(hex, 64)
end

local request_line

function init(args)
  sent_new = 0
  sent_again = 0
  accepted = 0
  unexpected = ""
  recent = {}
  math.randomseed(os.time() * 1000 + tid)
  key_pads()
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
    "p99=%d p999=%d unexpected=%s\n",
    summary.requests, summary.duration / 1e6, new, again, ok, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    unexpected == "" and "none" or unexpected))
end
