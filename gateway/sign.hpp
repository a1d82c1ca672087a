// A correctly signed sample delivery for a configured source, for trying a gateway by hand.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace flare::gateway {

struct SignedRequest {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Signs `body` (or a small sample event when it is nullopt) with the source's first secret, the
// way its provider does.
SignedRequest sign(const config::Source& source, std::optional<std::string> body,
                   std::chrono::system_clock::time_point now);

// A shell command that sends `request` to the gateway described by `config`.
std::string curl_command(const config::Config& config, const config::Source& source,
                         const SignedRequest& request);

}  // namespace flare::gateway
