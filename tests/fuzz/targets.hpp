// Fuzz targets for every signature-header parser, each reached the way a request reaches it:
// through its provider's verify(). An input is one request: its first lines are the values of
// the target's headers, in order; the rest is the body. The mutation driver (driver.cpp) runs
// them in every test run; with clang, libfuzzer.cpp runs one for as long as one likes.
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

}  // namespace flare::fuzz
