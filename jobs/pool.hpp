// A fixed set of threads, each with its own database connection, for the jobs API's reads and
// state changes. Callers never wait: they hand in a task and are called back.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobs/job.hpp"
#include "jobs/observer.hpp"
#include "jobs/reachability.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

class Pool {
 public:
  // Runs on a pool thread with that thread's store; may throw.
  using Task = std::function<void(Store&)>;
  // Instead of the task's own answer: kUnavailable (queue full, stopped, database away: at once
  // while it is, see Reachability) or kFailed (the database refused the work).
  using Failed = std::function<void(Outcome)>;

  // `observer` (may be null) is told of each database error.
  Pool(const std::string& database_url, int threads, Observer* observer = nullptr,
       std::size_t max_pending = 10'000);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  void submit(Task task, Failed failed);
  // Runs what was submitted, then joins the threads. Idempotent.
  void stop();

 private:
  struct Pending {
    Task task;
    Failed failed;
  };
  void run(Store& store);

  const std::size_t max_pending_;
  Reachability reachability_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace flare::jobs
