// Group commit: callers on any thread hand in enqueues without waiting; a committer thread takes
// every enqueue waiting at that moment, stores them with one statement, and only after the commit
// completes each one. One request alone commits at once; under load one commit carries many.
// While one statement runs, the next batch is sent behind it on the same connection (a
// pipeline of two), and the one after gathers in the queue. One committer thread is the
// default; more (CommitterOptions::lanes) commit side by side, each with its own connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobs/enqueue.hpp"
#include "jobs/handoff.hpp"
#include "jobs/job.hpp"
#include "jobs/observer.hpp"
#include "jobs/pipeline.hpp"
#include "jobs/reachability.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

struct Result {
  Outcome outcome;
  Enqueued stored;  // set for kCreated and kDuplicate
  NewJob job;       // what was submitted, handed back
};

struct CommitterOptions {
  bool auto_migrate = true;
  int partitions = 0;                      // the jobs table's, when migrating creates it
  int lanes = 1;                           // committer threads, each with its own connections
  std::size_t max_batch = 512;             // jobs in one batch
  std::size_t max_batch_bytes = 64 << 20;  // payload bytes in one batch (one job may pass)
  std::size_t max_pending = 20000;         // waiting jobs beyond which new ones are refused at once
  std::chrono::milliseconds health_interval{1000};
  Observer* observer = nullptr;  // told of every batch and database error; may be null
  Handoff* handoff = nullptr;    // offered the pushed jobs' deliveries; may be null
};

class Committer {
 public:
  using Done = std::function<void(Result)>;

  Committer(const std::string& database_url, CommitterOptions options);
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Never blocks on the database. `done` runs exactly once, on the committer's thread, or on
  // the caller's when the job is refused at once (queue full, stopped).
  void submit(NewJob job, Done done);

  // Completes everything already submitted, then stops the thread. Idempotent.
  void stop();

  // The newest contact with the database (by when it began) succeeded with a current schema.
  bool ready() const;

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

  // Jobs stored by one statement.
  struct Batch {
    std::vector<NewJob> jobs;
    std::vector<Done> done;
    Handing handing;
    std::chrono::steady_clock::time_point began;
  };

  // One committer thread's own state. `waiting` and `sent` are guarded by mutex_.
  struct Lane {
    explicit Lane(const std::string& database_url);
    ~Lane();
    Store store;        // health checks, and the batches the pipeline could not store
    Pipeline pipeline;  // the batches' enqueues
    bool schema_current = false;
    std::string problem;  // why the lane is not ready, as logged: a health check's finding, or a
                          // pipeline whose new connection was refused
    std::chrono::steady_clock::time_point check_at;  // when the next health check is due
    std::deque<Batch> in_flight;                     // sent, oldest first; the lane thread's alone
    int wake_fd;           // an eventfd: written to wake the thread from waiting
    bool waiting = false;  // asleep with room for a batch: submit() wakes it
    std::size_t sent = 0;  // in_flight.size(), for submit() to choose a lane
  };

  void run(Lane& lane);
  // Blocks until the lane may have something to do: new work (when it has room for it), an
  // answer, or `deadline`.
  void wait(Lane& lane, std::chrono::steady_clock::time_point deadline);
  // Records how a contact with the database that began at `began` ended. Lanes report out of
  // order; the contact that began last decides, so a stale failure cannot hide a success.
  void note(bool ok, std::chrono::steady_clock::time_point began);
  // Asks the database how it is (and migrates if allowed), unless the database is down and the
  // pause before the next try is not over.
  void check_health(Lane& lane);
  // The lane's readiness, from what a contact found: `problem` empty when it may write. A new
  // problem is logged when `log` (an unreachable database is Reachability's to tell).
  void found(Lane& lane, const std::string& problem, bool log);
  // Every job of `batch` gets 503: the lane cannot write now.
  void answer_unavailable(Batch& batch);
  // Hands job `i` of `batch` its result, and its deliveries to the workers when it was offered
  // to them and stored so.
  void complete(Batch& batch, std::size_t i, Outcome outcome, Enqueued stored = {});
  // When the lane's next health check is due.
  std::chrono::steady_clock::time_point next_check();
  // Hands each job of `batch` its result, from `results()`: the batch's answer, or a throw.
  // A batch the database refuses is stored again one job at a time.
  void settle(Lane& lane, Batch& batch, const std::function<std::vector<Enqueued>()>& results);

  // Batches a lane has sent and not yet settled. Two keep PostgreSQL busy; three made smaller
  // batches and fewer webhooks/s (bench/README.md, note 31), and Pipeline::send asks for two.
  static constexpr std::size_t kPipeline = 2;

  const CommitterOptions options_;
  Reachability reachability_;

  mutable std::mutex mutex_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  Stats stats_;

  std::atomic<std::int64_t> ok_began_{0};  // steady_clock ticks; 0: never
  std::atomic<std::int64_t> failed_began_{0};
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<std::thread> threads_;
};

}  // namespace flare::jobs
