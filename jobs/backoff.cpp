#include "jobs/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace flare::jobs {

std::chrono::milliseconds backoff(int attempt, std::int64_t base_ms, std::int64_t max_ms,
                                  double unit) {
  // 2^62 already exceeds any max_ms the configuration allows, so the shift cannot overflow.
  int exponent = std::clamp(attempt - 1, 0, 62);
  double ceiling = std::min(static_cast<double>(max_ms),
                            static_cast<double>(base_ms) * std::ldexp(1.0, exponent));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(unit * (ceiling + 1))));
}

}  // namespace flare::jobs
