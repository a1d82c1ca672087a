// What the job store takes and gives back; plain data, no database types.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flare::jobs {

// Where a job is in its life (SPEC §5). The names are the API's, the CLI's, the metrics' and the
// table's `status` column's.
enum class Status { kQueued, kRunning, kSucceeded, kRetrying, kDead, kCancelled };

inline constexpr std::array<Status, 6> kStatuses = {Status::kQueued,    Status::kRunning,
                                                    Status::kSucceeded, Status::kRetrying,
                                                    Status::kDead,      Status::kCancelled};

constexpr std::string_view to_string(Status status) {
  constexpr std::string_view kNames[] = {"queued",   "running", "succeeded",
                                         "retrying", "dead",    "cancelled"};
  return kNames[static_cast<int>(status)];
}

// nullopt for a name no status has.
constexpr std::optional<Status> parse_status(std::string_view label) {
  for (Status s : kStatuses) {
    if (to_string(s) == label) return s;
  }
  return std::nullopt;
}

// Succeeded, dead or cancelled: nothing more happens unless someone asks.
constexpr bool ended(Status status) {
  return status == Status::kSucceeded || status == Status::kDead || status == Status::kCancelled;
}

// "queued, running, ..., cancelled": the choices, for a message that lists them.
inline std::string status_names() {
  std::string out;
  for (Status s : kStatuses) out.append(out.empty() ? "" : ", ").append(to_string(s));
  return out;
}

// How a request to the store ended: an enqueue's new job or duplicate, or a failure of any
// request.
enum class Outcome {
  kCreated,
  kDuplicate,
  kUnavailable,  // the database is unreachable, unmigrated or overloaded: try again later
  kFailed,       // the database refused the request
};

// A route that is to push a new job, with the attempts its retry policy allows.
struct NewDelivery {
  std::string route;
  int max_attempts = 25;
};

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
  // A job of a source with routes is pushed, never pulled: it gets one delivery per route that
  // takes it, and is stored succeeded when none does.
  bool pushed = false;
  std::vector<NewDelivery> deliveries;
};

struct Enqueued {
  std::string job_id;
  bool created = false;             // false: the key already named this existing job
  Status status = Status::kQueued;  // an existing job's may have moved on
  std::string created_at;           // RFC 3339, UTC
  std::string run_at;
  // Its deliveries were stored running for this process's workers by the statement that
  // created it (see Handing); never set from a lookup, which may see a claim's work.
  bool handed_over = false;
};

// A job as stored. Times are RFC 3339 in UTC; optional fields are NULL in the table.
struct Job {
  std::string id;
  std::string project_id;
  std::optional<std::string> idempotency_key;
  std::string type;
  Status status = Status::kQueued;
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
  // Pushed by its source's routes: its status, attempts, run_at and last_error summarise its
  // deliveries (docs/delivery.md), and pull workers never claim it.
  bool pushed = false;
  // When retention removed its payload (then empty) and its attempts' answers: it can no
  // longer run.
  std::optional<std::string> pruned_at;
};

// One route's delivery of a pushed job: its own status, attempts, due time and last error.
struct Delivery {
  std::string project_id;
  std::string job_id;
  std::string route;
  std::string source;
  Status status = Status::kQueued;
  int attempts = 0;
  int max_attempts = 0;
  std::optional<std::string> last_error;
  std::optional<std::string> lease_token;
  std::string created_at;
  std::string updated_at;
  std::string run_at;
  std::optional<std::string> completed_at;
};

// The answer's first bytes an attempt keeps.
inline constexpr std::size_t kMaxAttemptResponse = 1024;

// One push attempt as recorded.
struct AttemptRecord {
  std::string route;
  int number = 0;          // the delivery's attempt, from 1
  std::string started_at;  // RFC 3339, UTC
  std::int64_t duration_ms = 0;
  std::optional<int> status_code;    // none: no answer came
  std::optional<std::string> error;  // none: it succeeded
  std::string response;              // the answer's first bytes, printable UTF-8
};

}  // namespace flare::jobs

namespace flare::jobs {

// One job as the API's and the CLI's detailed view shows it.
struct JobView {
  Job job;
  std::vector<Delivery> deliveries;  // by route; none for a pulled job
  std::vector<AttemptRecord> attempts;
};

}  // namespace flare::jobs
