// SQL text that several statements share: how a time is formatted, the channel that wakes the
// push workers, and the status column's values.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "jobs/job.hpp"

// Every commit that makes a job due notifies this channel; workers LISTEN on it.
#define FLARE_WAKE_CHANNEL "flare_jobs"

// A timestamptz as RFC 3339 in UTC with microseconds, the form every answer gives times in.
#define FLARE_TS(column) \
  "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

namespace flare::jobs {

inline constexpr const char* kWakeChannel = FLARE_WAKE_CHANNEL;

// The status a `status` column holds; a value this binary does not know is an error.
inline Status status_of(std::string_view column) {
  if (std::optional<Status> s = parse_status(column)) return *s;
  throw std::runtime_error("a job has a status this binary does not know: " +
                           std::string(column.substr(0, 32)));
}

}  // namespace flare::jobs
