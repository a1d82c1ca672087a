// Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 of "v0:<X-Slack-Request-Timestamp>:<body>"
// keyed with the app's signing secret. The event id is the Events API's `event_id`; other
// payloads (interactions, slash commands: form-encoded) are identified by the SHA-256 of their
// body, which a retry repeats. A signed `url_verification` is answered with its challenge.
#pragma once

#include "providers/provider.hpp"

namespace flare::providers {

// "v0=<hex HMAC-SHA256 of 'v0:<timestamp>:<body>'>".
std::string slack_signature(std::string_view secret, std::string_view timestamp,
                            std::string_view body);

class SlackProvider final : public Provider {
 public:
  SlackProvider(std::vector<config::Secret> secrets, std::chrono::seconds tolerance);
  Verdict verify(const InboundRequest& request,
                 std::chrono::system_clock::time_point now) const override;

 private:
  std::vector<config::Secret> secrets_;
  std::chrono::seconds tolerance_;
};

}  // namespace flare::providers
