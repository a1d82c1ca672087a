#include "providers/provider.hpp"

#include <stdexcept>

#include "providers/generic_hmac.hpp"
#include "providers/github.hpp"
#include "providers/shopify.hpp"
#include "providers/slack.hpp"
#include "providers/standard.hpp"
#include "providers/stripe.hpp"

namespace flare::providers {
namespace {
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}
}  // namespace

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const auto& [n, v] : fields_) {
    if (iequals(n, name)) return v;
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
