// The one table from outcome to HTTP status, code and JSON body (SPEC §3 and §5), and the bytes
// of a response. Pure.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/outcome.hpp"
#include "jobs/job.hpp"

namespace flare::gateway {

inline constexpr int kRetryAfterSeconds = 5;

struct Reply {
  Outcome outcome = Outcome::kInternal;
  std::string body;  // empty only for 204
  std::string_view content_type = "application/json";
  std::string_view allow = {};  // 405: the methods the route takes
  std::string headers;          // more header fields, each "Name: value\r\n" (the console's)
};

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

// {"error":{"code":...,"message":...,<fields>}}; the table's message unless one is given.
Reply error(Outcome outcome, std::string_view message = {}, const Fields& fields = {});
// {"status":<the outcome's name>,<fields>}
Reply status(Outcome outcome, const Fields& fields = {});
// {"challenge":<value>}: the answer to a provider's signed handshake.
Reply challenge(std::string_view value);
// A success whose body the caller made.
Reply success(Outcome outcome, std::string body);
// 405, naming the methods the route takes.
Reply not_allowed(std::string_view allow);
// A store that could not do the work: 503 (retry later) when the database is unavailable,
// 500 when it refused the work.
Reply store_failure(jobs::Outcome failure);

unsigned http_status(Outcome outcome);
// The outcome as logs and metrics name it: the error code, or "accepted", "duplicate", ...
std::string_view outcome_name(Outcome outcome);

// How a response travels: the request's HTTP version, whether the connection stays open, and
// the id the response carries.
struct Framing {
  bool http10 = false;
  bool keep_alive = true;
  std::string_view request_id;
};

// The status line, header and body of `reply`, into `out` (cleared first): a few fixed fields
// and the body, so that one buffer per connection is reused request after request.
void render(const Reply& reply, const Framing& framing, std::string& out);

// The interim answer to `Expect: 100-continue`.
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace flare::gateway
