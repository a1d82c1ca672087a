-- wrk script: the load a new user tries first, replaying webhooks as the providers send them.
-- Stripe events as Stripe formats them (pretty-printed, "id" first, nested objects with ids of
-- their own, 1.4 to 3.5 KB), 20 % GitHub push deliveries (1.4 to 3.5 KB), and 20 %
-- redeliveries of one of the last 1,000 events this thread sent, of either provider (a Stripe
-- one signed afresh). Unlike stripe.lua, every request's signature covers its whole body, made
-- as it is sent, and the bodies vary in shape: the gateway parses what real traffic makes it
-- parse.
--
-- Environment: BENCH_SECRET (the Stripe and GitHub sources' secret). The path wrk is given is
-- ignored: requests go to /webhooks/stripe and /webhooks/github. Ids are random, not labelled:
-- each run has a fresh database.

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local hmac = require("hmac")

local secret = os.getenv("BENCH_SECRET")

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local BODIES = 64
local RECENT = 1000
local key
local work = hmac.states(1)
local stripe_rests = {}  -- Stripe bodies after the id
local github_bodies = {}
local recent = {}  -- { github, id, body }
local host

-- n random hex digits.
local function hex(n)
  local out = {}
  for i = 1, n do out[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(out)
end

local function token(n)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  local out = {}
  for i = 1, n do
    local c = math.random(#chars)
    out[i] = chars:sub(c, c)
  end
  return table.concat(out)
end

-- `lines` joined and closed, items appended until the body is `size` bytes or more.
local function grow(lines, item, size, close)
  local body = table.concat(lines, "\n")
  local items = {}
  while #body + #table.concat(items, ",\n") + #close < size do items[#items + 1] = item() end
  return body .. table.concat(items, ",\n") .. close
end

local function stripe_rest(size)
  local amount = math.random(500, 50000)
  return grow({
    '",',
    '  "object": "event",',
    '  "api_version": "2024-06-20",',
    '  "created": ' .. os.time() .. ',',
    '  "data": {',
    '    "object": {',
    '      "id": "pi_3Q' .. token(22) .. '",',
    '      "object": "payment_intent",',
    '      "amount": ' .. amount .. ',',
    '      "amount_received": ' .. amount .. ',',
    '      "currency": "usd",',
    '      "customer": "cus_' .. token(14) .. '",',
    '      "latest_charge": "ch_3Q' .. token(22) .. '",',
    '      "metadata": {',
    '        "order_id": "' .. math.random(1, 999999) .. '"',
    '      },',
    '      "payment_method": "pm_1Q' .. token(22) .. '",',
    '      "status": "succeeded",',
    '      "line_items": [',
    '',
  }, function()
    return '        {\n          "id": "li_1Q' .. token(22) .. '",\n          "object": "item",\n' ..
        '          "amount_total": ' .. math.random(100, 9999) .. ',\n' ..
        '          "description": "Widget ' .. token(12) .. '",\n          "quantity": ' ..
        math.random(1, 5) .. '\n        }'
  end, size, '\n      ]\n    }\n  },\n  "livemode": false,\n  "pending_webhooks": 1,\n' ..
      '  "request": {\n    "id": "req_' .. token(14) .. '",\n    "idempotency_key": "' ..
      hex(8) .. '-' .. hex(4) .. '-' .. hex(4) .. '-' .. hex(4) .. '-' .. hex(12) .. '"\n  },\n' ..
      '  "type": "payment_intent.succeeded"\n}\n')
end

local function github_body(size)
  return grow({
    '{',
    '  "ref": "refs/heads/main",',
    '  "before": "' .. hex(40) .. '",',
    '  "after": "' .. hex(40) .. '",',
    '  "repository": {',
    '    "id": ' .. math.random(1, 999999999) .. ',',
    '    "node_id": "R_' .. token(14) .. '",',
    '    "name": "shop",',
    '    "full_name": "acme/shop",',
    '    "private": true',
    '  },',
    '  "pusher": {',
    '    "name": "octocat",',
    '    "email": "octocat@example.com"',
    '  },',
    '  "commits": [',
    '',
  }, function()
    return '    {\n      "id": "' .. hex(40) .. '",\n' ..
        '      "message": "Fix ' .. token(24) .. '",\n      "timestamp": "2026-12-03T10:00:00Z",\n' ..
        '      "author": {\n        "name": "Octo Cat",\n        "email": "octocat@example.com"\n' ..
        '      }\n    }'
  end, size, '\n  ]\n}\n')
end

function init(args)
  sent_new = 0
  sent_again = 0
  accepted = 0
  math.randomseed(os.time() * 1000 + tid)
  key = hmac.key(secret)
  for i = 1, BODIES do
    -- 1.4 to 3.5 KB in all: the head and id of a Stripe event take about 40 bytes.
    stripe_rests[i] = stripe_rest(math.random(1360, 3460))
    github_bodies[i] = github_body(math.random(1400, 3500))
  end
  host = wrk.headers["Host"]
end

local function sign(...)
  hmac.copy(work, key.inner)
  for _, part in ipairs({ ... }) do hmac.update(work, part) end
  return hmac.hex(key, work)
end

local function stripe_request(id, body)
  local t = tostring(os.time())
  return "POST /webhooks/stripe HTTP/1.1\r\nHost: " .. host ..
      "\r\nContent-Type: application/json; charset=utf-8\r\nUser-Agent: Stripe/1.0 " ..
      "(+https://stripe.com/docs/webhooks)\r\nStripe-Signature: t=" .. t .. ",v1=" ..
      sign(t, ".", body) .. "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

local function github_request(id, body)
  return "POST /webhooks/github HTTP/1.1\r\nHost: " .. host ..
      "\r\nContent-Type: application/json\r\nUser-Agent: GitHub-Hookshot/abc1234\r\n" ..
      "X-GitHub-Event: push\r\nX-GitHub-Delivery: " .. id .. "\r\nX-Hub-Signature-256: sha256=" ..
      sign(body) .. "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

function request()
  local r = math.random()
  local event
  if r < 0.2 and #recent > 0 then
    sent_again = sent_again + 1
    event = recent[math.random(#recent)]
  else
    sent_new = sent_new + 1
    -- Ids as the providers make them, and so spread over the idempotency key's index as theirs
    -- are: a GitHub delivery's GUID is random; a Stripe event's id begins with its time, then
    -- random characters.
    if r < 0.4 then
      local id = hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-8" .. hex(3) .. "-" .. hex(12)
      event = { true, id, github_bodies[math.random(BODIES)] }
    else
      local id = "evt_1" .. string.format("%08x", os.time()) .. token(16)
      event = { false, id, '{\n  "id": "' .. id .. stripe_rests[math.random(BODIES)] }
    end
    if #recent < RECENT then recent[#recent + 1] = event else recent[math.random(RECENT)] = event end
  end
  if event[1] then return github_request(event[2], event[3]) end
  return stripe_request(event[2], event[3])
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 end
end

function done(summary, latency, requests)
  local new, again, ok = 0, 0, 0
  for _, t in ipairs(threads) do
    new = new + t:get("sent_new")
    again = again + t:get("sent_again")
    ok = ok + t:get("accepted")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f new=%d again=%d accepted=%d non2xx=%d errors=%d p50=%d " ..
    "p99=%d p999=%d max=%d\n",
    summary.requests, summary.duration / 1e6, new, again, ok, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
