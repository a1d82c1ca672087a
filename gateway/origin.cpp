#include "gateway/origin.hpp"

#include <arpa/inet.h>
#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <optional>
#include <stdexcept>

#include "text/text.hpp"

namespace flare::gateway {
namespace {

std::string random_prefix() {
  unsigned char bytes[6];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no random bytes");
  return text::to_hex(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

// An IPv4 or IPv6 address in its canonical text form; nullopt for anything else.
std::optional<std::string> canonical_address(std::string_view text) {
  // The longest form of an address, an IPv4-mapped IPv6 one, has 45 characters.
  if (text.size() > 64) return std::nullopt;
  std::string input(text);
  std::array<unsigned char, 16> bytes{};
  char out[INET6_ADDRSTRLEN];
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, input.c_str(), bytes.data()) == 1 &&
        inet_ntop(family, bytes.data(), out, sizeof out) != nullptr) {
      return std::string(out);
    }
  }
  return std::nullopt;
}

}  // namespace

RequestIds::RequestIds() : prefix_(random_prefix()) {}

std::string RequestIds::next() { return prefix_ + "-" + std::to_string(++count_); }

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Origin origin_of(const std::vector<config::Cidr>& trusted_proxies, std::string_view peer, bool tls,
                 std::string generated, const providers::Headers* headers) {
  Origin o{std::string(peer), tls ? "https" : "http", std::move(generated)};
  bool trusted = false;
  for (const config::Cidr& cidr : trusted_proxies) trusted = trusted || cidr.contains(o.client);
  if (!trusted || headers == nullptr) return o;
  // The proxy appends the address it saw last; anything before it is the client's claim.
  std::string_view list = headers->get("X-Forwarded-For").value_or("");
  std::size_t comma = list.rfind(',');
  std::string_view last = comma == std::string_view::npos ? list : list.substr(comma + 1);
  while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
  if (std::optional<std::string> claimed = canonical_address(last)) o.client = std::move(*claimed);
  std::string_view proto = headers->get("X-Forwarded-Proto").value_or("");
  if (proto == "https" || proto == "http") o.proto = proto == "https" ? "https" : "http";
  std::string_view id = headers->get("X-Request-Id").value_or("");
  if (valid_request_id(id)) o.request_id = std::string(id);
  return o;
}

}  // namespace flare::gateway
