// When a failed attempt is tried again: exponential backoff with full jitter.
#pragma once

#include <chrono>
#include <cstdint>

namespace flare::jobs {

// A delay drawn uniformly from [0, min(max_ms, base_ms * 2^(attempt - 1))], where `attempt` is
// the attempt that just failed (1 for the first) and `unit` a uniform draw from [0, 1).
std::chrono::milliseconds backoff(int attempt, std::int64_t base_ms, std::int64_t max_ms,
                                  double unit);

}  // namespace flare::jobs
