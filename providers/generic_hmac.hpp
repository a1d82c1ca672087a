// The `hmac` provider: a signature scheme described in the source's YAML (config::Hmac), for
// providers that sign with an HMAC of the body in a way of their own: which header, which
// prefix, SHA-1/256/512, hex or base64, what is signed, where the event id and type are.
#pragma once

#include "providers/json.hpp"
#include "providers/provider.hpp"

namespace flare::providers {

// The signed content: the template with {body}, {timestamp}, {id} and {header:Name} filled in
// from the request. nullopt when a header it names is missing.
std::optional<std::string> hmac_signed_content(const config::Hmac& scheme, const Headers& headers,
                                               std::string_view body);

// The header value a sender puts: the prefix, then the encoded MAC of `content`.
std::string hmac_signature(const config::Hmac& scheme, std::string_view key,
                           std::string_view content);

class GenericHmacProvider final : public Provider {
 public:
  // `name`: the source's name, the event type when the scheme says nowhere to find one.
  GenericHmacProvider(config::Hmac scheme, std::vector<config::Secret> secrets,
                      std::chrono::seconds tolerance, std::string name);
  Verdict verify(const InboundRequest& request,
                 std::chrono::system_clock::time_point now) const override;

 private:
  config::Hmac scheme_;
  std::vector<config::Secret> secrets_;
  std::chrono::seconds tolerance_;
  std::string name_;
  std::vector<JsonPointer> pointers_;  // the id's and the type's, when they live in the body
};

}  // namespace flare::providers
