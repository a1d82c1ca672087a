// The one table from outcome to HTTP status, code and JSON body (SPEC §3 and §5).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/outcome.hpp"

namespace flare::gateway {

inline constexpr int kRetryAfterSeconds = 5;

struct Reply {
  unsigned status;
  std::string_view outcome;  // for the log: the error code, or "accepted", "duplicate", ...
  std::string body;          // JSON; empty only for 204
  std::string_view allow;    // the Allow header, for 405
  bool retry_after = false;  // 503: Retry-After
  bool challenge = false;    // 401: WWW-Authenticate: Bearer
  std::string_view content_type = "application/json";
};

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

// {"error":{"code":...,"message":...,<fields>}}; the table's message unless one is given.
Reply error(Outcome outcome, std::string_view message = {}, const Fields& fields = {});
// {"status":<the outcome's name>,<fields>}
Reply status(Outcome outcome, const Fields& fields = {});
// {"challenge":<value>}: the answer to a provider's handshake.
Reply challenge(std::string_view value);
// A success whose JSON body the caller made.
Reply success(Outcome outcome, std::string body);

}  // namespace flare::gateway
