#include "providers/shopify.hpp"

#include "providers/hmac.hpp"

namespace flare::providers {

ShopifyProvider::ShopifyProvider(std::vector<config::Secret> secrets, std::string event_id_header)
    : secrets_(std::move(secrets)), event_id_header_(std::move(event_id_header)) {}

Verdict ShopifyProvider::verify(const InboundRequest& request,
                                std::chrono::system_clock::time_point now) const {
  std::optional<std::string_view> signature = request.headers.get("X-Shopify-Hmac-Sha256");
  if (!signature || signature->empty()) {
    return Verdict::reject(VerifyError::kMissingSignature,
                           "X-Shopify-Hmac-Sha256 header is missing");
  }
  bool match = false;
  for (const config::Secret& secret : secrets_) {
    if (!secret.usable(now)) continue;
    Digest mac = hmac_sha256(secret.key, request.body);
    std::string expected = to_base64(mac);
    match |= constant_time_equal(*signature, expected);
  }
  if (!match) {
    return Verdict::reject(VerifyError::kInvalidSignature, "the signature matches no secret");
  }
  std::optional<std::string_view> id = request.headers.get(event_id_header_);
  if (!id || id->empty()) {
    return Verdict::reject(VerifyError::kInvalidEventId, "the event id header is missing");
  }
  std::optional<std::string_view> topic = request.headers.get("X-Shopify-Topic");
  if (!topic || topic->empty()) {
    return Verdict::reject(VerifyError::kInvalidPayload, "X-Shopify-Topic header is missing");
  }
  return Verdict::accept(std::string(*id), std::string(*topic));
}

}  // namespace flare::providers
