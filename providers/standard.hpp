// Standard Webhooks (standardwebhooks.com; Svix, Clerk, Resend, ...): `webhook-id`,
// `webhook-timestamp`, `webhook-signature: v1,<base64> [v1,<base64> ...]` (Svix's svix-* names
// too), HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed with the decoded whsec_ secret. The
// gateway signs its own pushes the same way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "providers/provider.hpp"

namespace flare::providers {

// "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>" keyed with the decoded whsec_ secret.
std::string standard_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                               std::string_view body);

class StandardProvider final : public Provider {
 public:
  // `keys`: the decoded whsec_ secrets.
  StandardProvider(std::vector<config::Secret> keys, std::chrono::seconds tolerance);
  Verdict verify(const InboundRequest& request,
                 std::chrono::system_clock::time_point now) const override;

 private:
  std::vector<config::Secret> keys_;
  std::chrono::seconds tolerance_;
};

}  // namespace flare::providers
