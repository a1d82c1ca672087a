#include "providers/standard.hpp"

#include "providers/hmac.hpp"

namespace flare::providers {

std::string standard_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                               std::string_view body) {
  std::string content;
  content.reserve(id.size() + 24 + body.size());
  content.append(id).append(".").append(std::to_string(timestamp)).append(".").append(body);
  Digest mac = hmac_sha256(key, content);
  return "v1," + to_base64(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

}  // namespace flare::providers
