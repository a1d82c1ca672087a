// What the job store takes and gives back; plain data, no database types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace flare::jobs {

struct NewJob {
  std::string project_id;
  std::string idempotency_key;  // empty: none; else at most 200 characters, valid UTF-8
  std::string type;
  std::string payload;  // the exact bytes received
  std::string content_type;
  std::string source;    // empty for jobs enqueued through the API
  std::string event_id;  // empty for jobs enqueued through the API
  int max_attempts = 25;
  int priority = 0;
  std::optional<std::int64_t> run_at_micros;  // Unix time; none: now
};

struct Enqueued {
  std::string job_id;
  bool created = false;    // false: the key already named this existing job
  std::string status;      // the job's status (an existing job's may have moved on)
  std::string created_at;  // RFC 3339, UTC
  std::string run_at;
};

// A job as stored. Times are RFC 3339 in UTC; optional fields are NULL in the table.
struct Job {
  std::string id;
  std::string project_id;
  std::optional<std::string> idempotency_key;
  std::string type;
  std::string status;
  int attempts = 0;
  int max_attempts = 0;
  int priority = 0;
  std::string payload;
  std::string content_type;
  std::optional<std::string> source;
  std::optional<std::string> event_id;
  std::optional<std::string> last_error;
  std::optional<std::string> lease_token;
  std::string created_at;
  std::string updated_at;
  std::string run_at;
  std::optional<std::string> completed_at;
  std::optional<std::string> locked_until;
};

}  // namespace flare::jobs
