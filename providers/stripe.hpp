// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of "<t>.<body>" keyed
// with the endpoint secret as written (whsec_... is not decoded); v0 and unknown schemes ignored.
#pragma once

#include "providers/provider.hpp"

namespace flare::providers {

class StripeProvider final : public Provider {
 public:
  StripeProvider(std::vector<config::Secret> secrets, std::chrono::seconds tolerance);
  Verdict verify(const InboundRequest& request,
                 std::chrono::system_clock::time_point now) const override;

 private:
  std::vector<config::Secret> secrets_;
  std::chrono::seconds tolerance_;
};

}  // namespace flare::providers
