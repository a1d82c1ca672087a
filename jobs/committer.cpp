#include "jobs/committer.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <optional>
#include <system_error>

namespace flare::jobs {
namespace {

void wake(int fd) {
  std::uint64_t one = 1;
  // Fails only when the counter is about to overflow: the thread is then awake anyway.
  (void)!write(fd, &one, sizeof one);
}

}  // namespace

Committer::Lane::Lane(const std::string& database_url)
    : store(database_url),
      pipeline(database_url, store),
      wake_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Committer::Lane::~Lane() { close(wake_fd); }

Committer::Committer(const std::string& database_url, CommitterOptions options)
    : options_(options), reachability_("committer", options.observer) {
  for (int i = 0; i < options_.lanes; ++i) lanes_.push_back(std::make_unique<Lane>(database_url));
  for (auto& lane : lanes_) threads_.emplace_back([this, &lane] { run(*lane); });
}

Committer::~Committer() { stop(); }

void Committer::submit(NewJob job, Done done) {
  std::unique_lock lock(mutex_);
  if (stopping_ || queue_.size() >= options_.max_pending) {
    lock.unlock();
    done(Result{Outcome::kUnavailable, {}, std::move(job)});
    return;
  }
  queue_.push_back(Pending{std::move(job), std::move(done)});
  // Of the lanes asleep with room for a batch, the one with the fewest in flight: an idle lane
  // rather than one whose pipeline may be held up behind a lock.
  Lane* chosen = nullptr;
  for (auto& lane : lanes_) {
    if (lane->waiting && (!chosen || lane->sent < chosen->sent)) chosen = lane.get();
  }
  if (!chosen) return;
  chosen->waiting = false;
  lock.unlock();
  wake(chosen->wake_fd);
}

void Committer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  for (auto& lane : lanes_) wake(lane->wake_fd);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

Committer::Stats Committer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool Committer::ready() const {
  std::int64_t ok = ok_began_.load();
  return ok != 0 && ok >= failed_began_.load();
}

void Committer::note(bool ok, std::chrono::steady_clock::time_point began) {
  bool was = ready();
  std::atomic<std::int64_t>& latest = ok ? ok_began_ : failed_began_;
  std::int64_t t = began.time_since_epoch().count();
  std::int64_t seen = latest.load();
  while (seen < t && !latest.compare_exchange_weak(seen, t)) {
  }
  bool now = ready();
  if (was != now) spdlog::info("database {}", now ? "ready" : "not ready");
}

void Committer::run(Lane& lane) {
  check_health(lane);
  lane.check_at = next_check();
  for (;;) {
    Batch batch;
    {
      std::lock_guard lock(mutex_);
      std::size_t bytes = 0;
      while (lane.in_flight.size() < kPipeline && !queue_.empty() &&
             batch.jobs.size() < options_.max_batch &&
             (batch.jobs.empty() ||
              bytes + queue_.front().job.payload.size() <= options_.max_batch_bytes)) {
        bytes += queue_.front().job.payload.size();
        batch.jobs.push_back(std::move(queue_.front().job));
        batch.done.push_back(std::move(queue_.front().done));
        queue_.pop_front();
      }
      if (batch.jobs.empty() && lane.in_flight.empty() && stopping_) return;
      lane.sent = lane.in_flight.size() + (batch.jobs.empty() ? 0 : 1);
      lane.waiting = lane.sent < kPipeline && !stopping_;
    }
    if (!batch.jobs.empty()) {
      if (!lane.schema_current &&
          (lane.problem.empty() || std::chrono::steady_clock::now() >= lane.check_at)) {
        // Not ready to write: ask the database how it is. After a problem a check found (no
        // database, a schema behind, a refused setup), only when the next check is due: a
        // refused setup costs a new connection each time.
        check_health(lane);
        lane.check_at = next_check();
      }
      // Still not ready: the batch fails at once, the database is not asked again per batch.
      if (!lane.schema_current) {
        answer_unavailable(batch);
        continue;
      }
      batch.began = std::chrono::steady_clock::now();
      if (Handoff* handoff = options_.handoff) {
        for (const NewJob& job : batch.jobs) batch.handing.offered.push_back(handoff->offer(job));
        batch.handing.lease_seconds = handoff->lease_seconds();
      }
      std::exception_ptr unsent;
      try {
        if (std::find(batch.handing.offered.begin(), batch.handing.offered.end(), true) !=
            batch.handing.offered.end()) {
          batch.handing.lease_token = new_job_id();  // any new UUID serves
        }
        lane.pipeline.send(batch.jobs, batch.handing);
      } catch (...) {
        unsent = std::current_exception();  // no job id (no random bytes), no memory
      }
      if (unsent) {
        settle(lane, batch, [&]() -> std::vector<Enqueued> { std::rethrow_exception(unsent); });
        continue;
      }
      lane.in_flight.push_back(std::move(batch));
    } else if (!lane.in_flight.empty()) {
      if (!lane.pipeline.oldest_answered()) {
        wait(lane, std::chrono::steady_clock::time_point::max());
        continue;
      }
      Batch answered = std::move(lane.in_flight.front());
      lane.in_flight.pop_front();
      settle(lane, answered, [&] { return lane.pipeline.receive(answered.jobs); });
    } else {
      wait(lane, lane.check_at);
      if (std::chrono::steady_clock::now() >= lane.check_at) {
        // Idle: ask the database how it is.
        check_health(lane);
        lane.check_at = next_check();
      }
    }
  }
}

void Committer::wait(Lane& lane, std::chrono::steady_clock::time_point deadline) {
  pollfd fds[2] = {{lane.wake_fd, POLLIN, 0}, {lane.pipeline.socket(), POLLIN, 0}};
  nfds_t count = lane.in_flight.empty() || fds[1].fd < 0 ? 1 : 2;
  int timeout = -1;
  if (deadline != std::chrono::steady_clock::time_point::max()) {
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    timeout = static_cast<int>(std::max<std::int64_t>(left.count(), 0));
  }
  if (poll(fds, count, timeout) < 0 && errno != EINTR) {
    throw std::system_error(errno, std::generic_category(), "poll");
  }
  std::uint64_t wakes;
  (void)!read(lane.wake_fd, &wakes, sizeof wakes);  // nonblocking: nothing to read is fine
}

void Committer::check_health(Lane& lane) {
  if (!reachability_.may_try()) return;
  auto began = std::chrono::steady_clock::now();
  std::string problem;
  std::optional<Unavailable> unavailable;
  try {
    if (options_.auto_migrate && lane.store.schema_version() < Store::latest_version()) {
      lane.store.migrate(options_.partitions);
    }
    int version = lane.store.schema_version();
    // Migrations only add (or drop an index an older binary can do without), so a newer schema
    // serves an older binary during a rolling upgrade.
    if (version < Store::latest_version()) {
      problem = "database schema is at version " + std::to_string(version) +
                ", this binary needs " + std::to_string(Store::latest_version()) + ": run migrate";
    } else {
      lane.pipeline.connect();
    }
  } catch (const Unavailable& e) {
    unavailable = e;
    problem = e.what();
  } catch (const std::exception& e) {
    problem = e.what();
  }
  // An unreachable database is Reachability's to tell, once per outage.
  found(lane, problem, !unavailable || unavailable->answered());
  note(lane.schema_current, began);
  // Told last: once it says the database is back, this lane writes again.
  if (unavailable) {
    reachability_.failed(*unavailable);
  } else {
    reachability_.answered();
  }
}

void Committer::found(Lane& lane, const std::string& problem, bool log) {
  // Each problem once, however often it is found again.
  if (log && !problem.empty() && problem != lane.problem) spdlog::warn("{}", problem);
  lane.problem = problem;
  lane.schema_current = problem.empty();
}

void Committer::answer_unavailable(Batch& batch) {
  for (std::size_t i = 0; i < batch.jobs.size(); ++i) complete(batch, i, Outcome::kUnavailable);
}

void Committer::complete(Batch& batch, std::size_t i, Outcome outcome, Enqueued stored) {
  if (!batch.handing.offered.empty() && batch.handing.offered[i]) {
    bool answered = outcome == Outcome::kCreated || outcome == Outcome::kDuplicate;
    options_.handoff->settle(batch.jobs[i], answered ? &stored : nullptr, batch.handing.lease_token,
                             batch.began);
  }
  batch.done[i](Result{outcome, std::move(stored), std::move(batch.jobs[i])});
}

std::chrono::steady_clock::time_point Committer::next_check() {
  // While the database is down, as soon as the pause allows, but no sooner than the first pause:
  // the pause is over while another lane tries, and this one would spin until it is done.
  auto now = std::chrono::steady_clock::now();
  if (reachability_.down())
    return std::max(reachability_.next_try(), now + Reachability::kFirstPause);
  return now + options_.health_interval;
}

void Committer::settle(Lane& lane, Batch& batch,
                       const std::function<std::vector<Enqueued>()>& results) {
  std::vector<Enqueued> stored;
  try {
    stored = results();
  } catch (const Pipeline::NotReady& e) {
    // The pipeline's connection broke and the server refused to make its new one ready: the
    // lane writes again once a health check finds the setup accepted.
    found(lane, e.what(), true);
    lane.check_at = next_check();
    note(false, batch.began);
    answer_unavailable(batch);
    return;
  } catch (const Unavailable& e) {
    reachability_.failed(e);
    lane.schema_current = false;
    note(false, batch.began);
    answer_unavailable(batch);
    return;
  } catch (const std::exception& e) {
    // One job the database refuses must not fail the others: store them one at a time.
    if (batch.jobs.size() == 1) {
      spdlog::error("enqueue refused by the database: {}", e.what());
      complete(batch, 0, Outcome::kFailed);
      return;
    }
    for (std::size_t i = 0; i < batch.jobs.size(); ++i) {
      if (!lane.schema_current) {  // the database went away meanwhile: do not ask it per job
        complete(batch, i, Outcome::kUnavailable);
        continue;
      }
      // Stored on its own, the job waits for a claim: its offer is settled as not taken.
      Batch one;
      one.jobs.push_back(std::move(batch.jobs[i]));
      one.done.push_back(std::move(batch.done[i]));
      if (!batch.handing.offered.empty()) one.handing.offered = {batch.handing.offered[i]};
      one.began = std::chrono::steady_clock::now();
      settle(lane, one, [&] { return lane.store.enqueue(one.jobs); });
    }
    return;
  }
  // Outside the try: a batch stored is never stored again one job at a time.
  note(true, batch.began);
  if (options_.observer) {
    options_.observer->committed(batch.jobs.size(), std::chrono::steady_clock::now() - batch.began);
  }
  {
    std::lock_guard lock(mutex_);
    stats_.batches += 1;
    stats_.jobs += batch.jobs.size();
    stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, batch.jobs.size());
  }
  for (std::size_t i = 0; i < batch.jobs.size(); ++i) {
    complete(batch, i, stored[i].created ? Outcome::kCreated : Outcome::kDuplicate,
             std::move(stored[i]));
  }
}

}  // namespace flare::jobs
