// Fuzz targets for everything a client or an operator's file controls before anything is trusted:
// every signature-header parser, reached the way a request reaches it (through its provider's
// verify(); an input is one request: its first lines are the values of the target's headers, in
// order, the rest is the body), the body parser providers share, a request's head as the dispatcher
// and origin handling see it, and the configuration loader. The mutation driver (driver.cpp)
// runs them, and replays the committed corpus (corpus/<target>/), in every test run; with clang,
// libfuzzer.cpp runs one for as long as one likes (README.md).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "providers/provider.hpp"

namespace flare::fuzz {

// The clock every target verifies at, and every seed is signed at.
inline constexpr std::int64_t kNow = 1700000000;

struct Target {
  std::string name;
  std::vector<std::string> headers;  // the names the input's first lines are values of
  std::unique_ptr<providers::Provider> provider;
  std::vector<std::string> seeds;  // requests signed with the target's secret, each verifies
};

const std::vector<Target>& targets();

struct Run {
  providers::Verdict verdict;
  std::string_view body;
};

// Verifies `input` as a request to `target`, and aborts when the verdict is malformed: an
// acceptance without an event id and type (or a challenge), or a rejection without a reason.
Run run(const Target& target, std::string_view input);

// The body parser providers share, on arbitrary bytes.
void run_json(std::string_view input);

// A request's head: lines for the method, the target, the base path, X-Forwarded-For,
// X-Forwarded-Proto and X-Request-Id, routed, its origin taken (from a trusted proxy), and the
// reply it would get rendered. Aborts when a route, an origin or the rendered header breaks its
// contract (a webhook route without its source, a request id that is neither ours nor valid,
// a header field with a control character in it, ...).
void run_head(std::string_view input);
inline const std::vector<std::string> kHeadSeeds = {
    "POST\n/webhooks/stripe\n\n203.0.113.7\nhttps\nabc-1",
    "GET\n/flare/v1/jobs/0190a5c2-7c3e-7d4a-9b1f-0123456789ab/retry?x=1\n/flare\n10.0.0.1, "
    "2001:db8::1\nhttp\nreq:1.2_3",
    "DELETE\n/v1/jobs?status=dead&cursor=00\n\n\n\n"};

// A configuration file's text, loaded: either a configuration or an Error naming the problems;
// anything else (another exception, a crash) is a defect.
void run_config(std::string_view input);

}  // namespace flare::fuzz
