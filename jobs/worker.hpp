// Push workers: threads that claim due deliveries of the sources' routes a batch at a time, hand
// each to a Deliverer, and record the attempts and their outcomes a batch at a time. Woken by
// LISTEN/NOTIFY when an enqueue commits, with polling as the fallback; idle workers sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "jobs/handoff.hpp"
#include "jobs/job.hpp"
#include "jobs/observer.hpp"
#include "jobs/reachability.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

// How a Deliverer's attempt ended.
struct Attempt {
  enum class Result { kSucceeded, kFailed, kAbandoned };
  Result result;
  std::string error;               // kFailed: why, kept as the delivery's last_error
  std::optional<int> status_code;  // when an answer came
  std::string response;            // the answer's first bytes (see AttemptRecord)
  // The delay the destination asked for (already within the retry policy's max_ms); replaces
  // the backoff.
  std::optional<std::chrono::milliseconds> retry_after;
};

// Performs one attempt at a time for one worker thread.
class Deliverer {
 public:
  virtual ~Deliverer() = default;
  virtual Attempt deliver(const Job& job, const Delivery& delivery) = 0;
  // From any thread: ends the attempt in progress, and any later one, as kAbandoned.
  virtual void abandon() = 0;
};

struct WorkerOptions {
  std::vector<const config::Source*> sources;  // with routes: their deliveries are pushed
  // The defaults are the configuration's.
  int concurrency = config::Workers{}.concurrency;
  // The most deliveries of one route claimed, attempted and recorded together (see kBatchSpan).
  int batch = config::Workers{}.batch;
  int lease_seconds = config::Workers{}.lease_seconds;
  std::chrono::milliseconds poll_interval = config::Workers{}.poll_interval;
  Observer* observer = nullptr;  // told of every attempt's outcome and database error
  Handoff* handoff = nullptr;    // deliveries handed over at their enqueue; may be null
};

class Workers {
 public:
  using MakeDeliverer = std::function<std::unique_ptr<Deliverer>()>;

  Workers(const std::string& database_url, WorkerOptions options, MakeDeliverer make);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // What a batch for a route says of the next: an attempt's time and a payload's bytes, on
  // average.
  struct Pace {
    std::chrono::steady_clock::duration attempt;
    std::size_t payload = 0;
  };

  // Stops claiming, lets attempts in flight finish for at most `drain`, abandons the rest
  // (their jobs are released, due again), joins, and releases the deliveries handed over and not
  // begun. Idempotent.
  void stop(std::chrono::milliseconds drain);

 private:
  void work(Deliverer& deliverer, std::size_t first);
  void listen();
  // Attempts the claimed deliveries in turn, until one fails, the batch has run long, or the
  // lease would run out before the next could end; gives the rest back; records every outcome at
  // once. Returns the batch's pace; none when no attempt was made or one failed.
  std::optional<Pace> push(Store& store, Deliverer& deliverer, const std::vector<Push>& pushes,
                           const config::Route& route,
                           std::chrono::steady_clock::time_point leased_until);
  // Wakes the idle workers that wait for wake-ups.
  void wake_all();
  // Sleeps until a wake-up newer than `seen` (none: not woken by wake-ups), `timeout`, or stop.
  void wait(std::optional<std::uint64_t> seen, std::chrono::milliseconds timeout);
  // A worker's next deliveries of route `r`, under claiming_[r]: handed over, or claimed.
  Handoff::Taken next_batch(Store& store, std::size_t r, int most,
                            std::optional<std::chrono::milliseconds>& retry_in);
  // Gives the deliveries handed over and never taken back to the queue.
  void release_handed(std::chrono::steady_clock::time_point until);
  // Gives `pushes`, never begun, back to the queue.
  void release(Store& store, const std::vector<Push>& pushes, const config::Route& route);
  // stop() was called: a batch attempts no more and gives the rest back.
  bool stopping();

  const std::string database_url_;
  const WorkerOptions options_;
  std::vector<std::pair<const config::Source*, const config::Route*>> routes_;
  std::vector<std::mutex> claiming_;  // by route: held while this process claims for it
  // By route, under claiming_: no claim before then (see kGather).
  std::vector<std::chrono::steady_clock::time_point> gathering_until_;
  // By route, under claiming_: when this process last claimed for it.
  std::vector<std::chrono::steady_clock::time_point> claimed_at_;
  // steady_clock ticks of the latest notification of new jobs.
  std::atomic<std::int64_t> notified_at_{0};
  Reachability reachability_;  // the workers' and the listener's connections together
  std::vector<std::unique_ptr<Deliverer>> deliverers_;

  std::mutex mutex_;
  std::condition_variable changed_;
  // Only stop() notifies it: wake-ups do not end a worker's sleep while a route gathers.
  std::condition_variable stopped_;
  std::uint64_t wakeups_ = 0;
  int busy_ = 0;  // attempts in flight
  bool stopping_ = false;

  std::vector<std::thread> threads_;
};

}  // namespace flare::jobs
