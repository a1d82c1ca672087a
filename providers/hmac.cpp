#include "providers/hmac.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <stdexcept>

#include "text/text.hpp"

namespace flare::providers {

namespace {

// One HMAC context per thread and digest, made once. OpenSSL 3's one-shot HMAC() looks up the
// MAC and the digest by name on every call, which cost about as much as hashing a 3 KB body.
enum Md : std::size_t { kSha1, kSha256, kSha512, kMds };

EVP_MAC_CTX* mac_context(Md md) {
  struct Contexts {
    EVP_MAC_CTX* of[kMds] = {};
    ~Contexts() {
      for (EVP_MAC_CTX* ctx : of) EVP_MAC_CTX_free(ctx);
    }
  };
  thread_local Contexts contexts;
  EVP_MAC_CTX*& ctx = contexts.of[md];
  if (ctx == nullptr) {
    static constexpr const char* kNames[kMds] = {"SHA1", "SHA256", "SHA512"};
    EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* fresh = hmac ? EVP_MAC_CTX_new(hmac) : nullptr;
    EVP_MAC_free(hmac);  // the context holds its own reference
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(kNames[md]), 0),
        OSSL_PARAM_construct_end()};
    if (fresh == nullptr || EVP_MAC_CTX_set_params(fresh, params) != 1) {
      EVP_MAC_CTX_free(fresh);
      throw std::runtime_error("HMAC unavailable");
    }
    ctx = fresh;
  }
  return ctx;
}

// Writes exactly `size` bytes of MAC to `out`.
void mac(Md md, std::string_view key, std::string_view data, unsigned char* out, std::size_t size) {
  EVP_MAC_CTX* ctx = mac_context(md);
  // A null key would mean "the previous call's key" to EVP_MAC_init: never pass one.
  static const unsigned char kEmpty = 0;
  const auto* key_bytes =
      key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  std::size_t length = 0;
  if (EVP_MAC_init(ctx, key_bytes, key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(ctx, out, &length, size) != 1 || length != size) {
    throw std::runtime_error("HMAC failed");
  }
}

std::string_view bytes_of(const Digest& digest) {
  return std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size());
}

}  // namespace

Digest hmac_sha256(std::string_view key, std::string_view data) {
  Digest out{};
  mac(kSha256, key, data, out.data(), out.size());
  return out;
}

std::string hmac_bytes(config::Hmac::Algorithm algorithm, std::string_view key,
                       std::string_view data) {
  using A = config::Hmac::Algorithm;
  Md md = algorithm == A::kSha1 ? kSha1 : algorithm == A::kSha512 ? kSha512 : kSha256;
  static constexpr std::size_t kSizes[kMds] = {20, 32, 64};
  std::string out(kSizes[md], '\0');
  mac(md, key, data, reinterpret_cast<unsigned char*>(out.data()), out.size());
  return out;
}

Digest sha256(std::string_view data) {
  Digest out{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != out.size()) {
    throw std::runtime_error("SHA-256 failed");
  }
  return out;
}

std::string to_hex(const Digest& digest) { return text::to_hex(bytes_of(digest)); }

std::string to_base64(const Digest& digest) { return text::to_base64(bytes_of(digest)); }

std::optional<Digest> digest_from_hex(std::string_view hex) {
  Digest out{};
  if (hex.size() != out.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = text::hex_digit(hex[2 * i]);
    int lo = text::hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

bool constant_time_equal(const Digest& a, const Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace flare::providers
