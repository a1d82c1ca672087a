// The jobs table in PostgreSQL. The only place that speaks to the database: everything it
// throws is Unavailable (worth retrying later) or a bug in the request it was given.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "jobs/job.hpp"

namespace flare::jobs {

// The database could not be reached or gave up on the work: nothing was stored.
class Unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Store {
 public:
  // Connects on first use, and again after a failure. Not thread-safe: one owner thread.
  explicit Store(std::string url);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // One transaction for the whole batch. Returns one result per job, in order: the new job's
  // id, or the id of the job that already holds the key (two jobs in the batch with one key
  // get the same id, the first one created).
  std::vector<Enqueued> enqueue(const std::vector<NewJob>& jobs);

  // Applies every pending migration under an advisory lock; returns how many it applied.
  int migrate();
  // The schema version in the database (0 before the first migration) and the binary's own.
  int schema_version();
  static int latest_version();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flare::jobs
