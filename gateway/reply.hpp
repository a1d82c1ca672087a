// SPEC §3's response contract in one table: outcome -> status, error code and JSON body.
#pragma once

#include <string>
#include <string_view>

#include "gateway/outcome.hpp"

namespace flare::gateway {

inline constexpr int kRetryAfterSeconds = 5;

struct Reply {
  unsigned status;
  std::string_view outcome;  // for the log: the error code, or "accepted", "duplicate", ...
  std::string body;          // JSON
  std::string_view allow;    // the Allow header for 405, else empty
  bool retry_after = false;
};

// `detail` replaces the default error message; `job_id` and `key` fill 202 and 200 bodies.
Reply make_reply(Outcome outcome, std::string_view detail = {}, std::string_view job_id = {},
                 std::string_view key = {}, std::string_view allow = "POST");

}  // namespace flare::gateway
