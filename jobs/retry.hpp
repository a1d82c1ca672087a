// When a failed attempt is tried again: exponential backoff with full jitter, by the retry policy
// of the route (push), of the job's source or workers.retry (pull). The push workers and the
// API's `fail` both ask here.
#pragma once

#include <chrono>
#include <cstdint>

#include "config/config.hpp"
#include "jobs/job.hpp"

namespace flare::jobs {

// A delay drawn uniformly from [0, min(max_ms, base_ms * 2^(attempt - 1))], where `attempt` is
// the attempt that just failed (1 for the first) and `unit` a uniform draw from [0, 1).
std::chrono::milliseconds backoff(int attempt, std::int64_t base_ms, std::int64_t max_ms,
                                  double unit);

// How long to wait after failed attempt number `attempt` under `retry`, drawn from this thread's
// random generator.
std::chrono::milliseconds retry_delay(const config::Retry& retry, int attempt);

// How long a pulled job waits after its attempt `failed`: by its source's retry policy, or
// workers.retry for a job enqueued through the API.
std::chrono::milliseconds retry_delay(const config::Config& config, const Job& failed);

}  // namespace flare::jobs
