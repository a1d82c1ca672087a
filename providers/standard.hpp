// Standard Webhooks (standardwebhooks.com): the scheme the gateway signs its own pushes with.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace flare::providers {

// "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>" keyed with the decoded whsec_ secret.
std::string standard_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                               std::string_view body);

}  // namespace flare::providers
