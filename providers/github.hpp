// GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body. The event id is the
// X-GitHub-Delivery header and the type X-GitHub-Event. GitHub signs no timestamp.
#pragma once

#include "providers/provider.hpp"

namespace flare::providers {

class GithubProvider final : public Provider {
 public:
  explicit GithubProvider(std::vector<config::Secret> secrets);
  Verdict verify(const InboundRequest& request,
                 std::chrono::system_clock::time_point now) const override;

 private:
  std::vector<config::Secret> secrets_;
};

}  // namespace flare::providers
