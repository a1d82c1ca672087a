-- HMAC-SHA256 (RFC 2104) for the wrk scripts, on OpenSSL's SHA-256 through LuaJIT's FFI. A key's
-- padded states are made once; a message is hashed into a state started from the key's inner
-- one, which may be copied part-way to sign many messages that share a beginning.
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

local M = {}
local CTX_SIZE = ffi.sizeof("SHA256_CTX")
local final = ffi.new("SHA256_CTX")
local inner = ffi.new("unsigned char[32]")
local mac = ffi.new("unsigned char[32]")
local digits = ffi.new("const char[17]", "0123456789abcdef")
local hex = ffi.new("char[64]")

-- n hash states, for messages in the making.
function M.states(n) return ffi.new("SHA256_CTX[?]", n) end

-- The key's states after its inner and outer pads.
function M.key(secret)
  assert(#secret <= 64, "an HMAC key longer than SHA-256's block")
  local ipad, opad = ffi.new("unsigned char[64]"), ffi.new("unsigned char[64]")
  for i = 0, 63 do
    local k = i < #secret and secret:byte(i + 1) or 0
    ipad[i] = bit.bxor(k, 0x36)
    opad[i] = bit.bxor(k, 0x5c)
  end
  local key = { inner = ffi.new("SHA256_CTX"), outer = ffi.new("SHA256_CTX") }
  crypto.SHA256_Init(key.inner)
  crypto.SHA256_Update(key.inner, ipad, 64)
  crypto.SHA256_Init(key.outer)
  crypto.SHA256_Update(key.outer, opad, 64)
  return key
end

-- state := from (a key's inner state, or a message part-way).
function M.copy(state, from) ffi.copy(state, from, CTX_SIZE) end

function M.update(state, s) crypto.SHA256_Update(state, s, #s) end

-- The hex MAC of the message hashed into state (which it uses up).
function M.hex(key, state)
  crypto.SHA256_Final(inner, state)
  ffi.copy(final, key.outer, CTX_SIZE)
  crypto.SHA256_Update(final, inner, 32)
  crypto.SHA256_Final(mac, final)
  for i = 0, 31 do
    hex[2 * i] = digits[bit.rshift(mac[i], 4)]
    hex[2 * i + 1] = digits[bit.band(mac[i], 15)]
  end
  return ffi.string(hex, 64)
end

return M
