// Shopify: `X-Shopify-Hmac-Sha256: <base64>`, HMAC-SHA256 of the raw body keyed with the
// secret as written. The event id is X-Shopify-Event-Id (the same across retries and across
// subscriptions; or X-Shopify-Webhook-Id when configured); the type X-Shopify-Topic. Shopify
// signs no timestamp.
#pragma once

#include "providers/provider.hpp"

namespace flare::providers {

class ShopifyProvider final : public Provider {
 public:
  ShopifyProvider(std::vector<config::Secret> secrets, std::string event_id_header);
  Verdict verify(const InboundRequest& request,
                 std::chrono::system_clock::time_point now) const override;

 private:
  std::vector<config::Secret> secrets_;
  std::string event_id_header_;
};

}  // namespace flare::providers
