#include "jobs/retry.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace flare::jobs {

std::chrono::milliseconds backoff(int attempt, std::int64_t base_ms, std::int64_t max_ms,
                                  double unit) {
  // 2^62 already exceeds any max_ms the configuration allows, so the shift cannot overflow.
  int exponent = std::clamp(attempt - 1, 0, 62);
  double ceiling = std::min(static_cast<double>(max_ms),
                            static_cast<double>(base_ms) * std::ldexp(1.0, exponent));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(unit * (ceiling + 1))));
}

std::chrono::milliseconds retry_delay(const config::Retry& retry, int attempt) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  double unit = std::uniform_real_distribution<double>(0.0, 1.0)(random);
  return backoff(attempt, retry.base_ms, retry.max_ms, unit);
}

std::chrono::milliseconds retry_delay(const config::Config& config, const Job& failed) {
  const config::Retry* retry = &config.workers.retry;
  for (const config::Source& s : config.sources) {
    if (failed.source && s.name == *failed.source) retry = &s.retry;
  }
  return retry_delay(*retry, failed.attempts);
}

}  // namespace flare::jobs
