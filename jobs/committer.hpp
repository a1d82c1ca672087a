// Group commit: callers on any thread hand in enqueues without waiting; one thread takes every
// enqueue waiting at that moment, stores them in one transaction, and only after the commit
// completes each one. One request alone commits at once; under load one commit carries many.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobs/job.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

enum class Outcome {
  kCreated,
  kDuplicate,
  kUnavailable,  // nothing stored: the database is unreachable, unmigrated or overloaded
  kFailed,       // nothing stored: the database refused this job on its own
};

struct Result {
  Outcome outcome;
  Enqueued stored;  // set for kCreated and kDuplicate
  NewJob job;       // what was submitted, handed back
};

struct CommitterOptions {
  bool auto_migrate = true;
  std::size_t max_batch = 512;      // jobs in one transaction
  std::size_t max_pending = 20000;  // waiting jobs beyond which new ones are refused at once
  std::chrono::milliseconds health_interval{1000};
};

class Committer {
 public:
  using Done = std::function<void(Result)>;

  Committer(std::unique_ptr<Store> store, CommitterOptions options);
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Never blocks on the database. `done` runs exactly once, on the committer's thread, or on
  // the caller's when the job is refused at once (queue full, stopped).
  void submit(NewJob job, Done done);

  // Completes everything already submitted, then stops the thread. Idempotent.
  void stop();

  // The database answered the last time it was asked and the schema is current.
  bool ready() const { return ready_.load(); }

  struct Stats {
    std::uint64_t batches = 0;
    std::uint64_t jobs = 0;
    std::uint64_t largest_batch = 0;
  };
  Stats stats() const;

 private:
  struct Pending {
    NewJob job;
    Done done;
  };

  void run();
  void check_health();
  void commit(std::vector<Pending>& batch);

  std::unique_ptr<Store> store_;
  const CommitterOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  Stats stats_;

  std::atomic<bool> ready_{false};
  bool schema_current_ = false;  // committer thread only
  std::thread thread_;
};

}  // namespace flare::jobs
