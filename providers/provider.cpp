#include "providers/provider.hpp"

#include <stdexcept>

#include "providers/generic_hmac.hpp"
#include "providers/github.hpp"
#include "providers/shopify.hpp"
#include "providers/slack.hpp"
#include "providers/standard.hpp"
#include "providers/stripe.hpp"
#include "text/text.hpp"

namespace flare::providers {

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const auto& [n, v] : fields_) {
    if (text::iequals(n, name)) return v;
  }
  return std::nullopt;
}

std::unique_ptr<Provider> make_provider(const config::Source& source) {
  if (source.provider == "stripe") {
    return std::make_unique<StripeProvider>(source.secrets, source.tolerance);
  }
  if (source.provider == "github") return std::make_unique<GithubProvider>(source.secrets);
  if (source.provider == "standard") {
    return std::make_unique<StandardProvider>(source.secrets, source.tolerance);
  }
  if (source.provider == "shopify") {
    return std::make_unique<ShopifyProvider>(source.secrets, source.event_id_header);
  }
  if (source.provider == "slack") {
    return std::make_unique<SlackProvider>(source.secrets, source.tolerance);
  }
  if (source.provider == "hmac") {
    return std::make_unique<GenericHmacProvider>(*source.hmac, source.secrets, source.tolerance,
                                                 source.name);
  }
  // The configuration refuses unknown providers, so reaching this is a bug.
  throw std::logic_error("unknown provider " + source.provider);
}

}  // namespace flare::providers
