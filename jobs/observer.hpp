// What the job machinery reports as it works, for the gateway's metrics. Called from committer,
// pool and worker threads: implementations are thread-safe and never block.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace flare::jobs {

class Observer {
 public:
  virtual ~Observer() = default;
  // One transaction of enqueues committed, carrying `jobs` jobs, `took` after it was sent (the
  // wait behind the batch sent before it included).
  virtual void committed(std::size_t jobs, std::chrono::steady_clock::duration took) = 0;
  // A contact with the database failed (unreachable, restarting, timed out).
  virtual void database_error() = 0;
  // A group of connections (see Reachability) found the database gone: at start, or where it
  // answered before.
  virtual void database_unreachable(std::string_view group) = 0;
  // A push attempt to a source's route ended, after `took`: succeeded, retrying, dead,
  // lease_lost or released.
  virtual void attempted(std::string_view source, std::string_view route, std::string_view outcome,
                         std::chrono::milliseconds took) = 0;
  // A pass of retention emptied `payloads` jobs' payloads and deleted `rows` jobs.
  virtual void pruned(std::int64_t payloads, std::int64_t rows) = 0;
};

}  // namespace flare::jobs
