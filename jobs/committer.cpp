#include "jobs/committer.hpp"

#include <spdlog/spdlog.h>

namespace flare::jobs {

Committer::Committer(const std::string& database_url, CommitterOptions options)
    : options_(options) {
  for (int i = 0; i < options_.lanes; ++i) {
    lanes_.push_back(
        std::unique_ptr<Lane>(new Lane{Store(database_url, Store::Role::kCommitter), false}));
  }
  for (auto& lane : lanes_) threads_.emplace_back([this, &lane] { run(*lane); });
}

Committer::~Committer() { stop(); }

void Committer::submit(NewJob job, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < options_.max_pending) {
      queue_.push_back(Pending{std::move(job), std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done(Result{Outcome::kUnavailable, {}, std::move(job)});
}

void Committer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
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
  if (!ok && options_.observer) options_.observer->database_error();
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
  auto next_check = std::chrono::steady_clock::now() + options_.health_interval;
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_until(lock, next_check, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty() && stopping_) return;
      std::size_t bytes = 0;
      while (!queue_.empty() && batch.size() < options_.max_batch &&
             (batch.empty() ||
              bytes + queue_.front().job.payload.size() <= options_.max_batch_bytes)) {
        bytes += queue_.front().job.payload.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch.empty() || !lane.schema_current) {
      // Idle, or not ready to write: ask the database how it is (and migrate if allowed).
      check_health(lane);
      next_check = std::chrono::steady_clock::now() + options_.health_interval;
    }
    if (!batch.empty()) commit(lane, batch);
  }
}

void Committer::check_health(Lane& lane) {
  auto began = std::chrono::steady_clock::now();
  bool& current = lane.schema_current;
  try {
    if (options_.auto_migrate && lane.store.schema_version() < Store::latest_version()) {
      lane.store.migrate();
    }
    int version = lane.store.schema_version();
    // Migrations only add, so a newer schema serves an older binary during a rolling upgrade.
    current = version >= Store::latest_version();
    if (!current) {
      spdlog::warn("database schema is at version {}, this binary needs {}: run migrate", version,
                   Store::latest_version());
    }
  } catch (const std::exception& e) {
    current = false;
    spdlog::warn("database unavailable: {}", e.what());
  }
  note(current, began);
}

void Committer::commit(Lane& lane, std::vector<Pending>& batch) {
  if (!lane.schema_current) {
    for (Pending& p : batch) p.done(Result{Outcome::kUnavailable, {}, std::move(p.job)});
    return;
  }
  auto began = std::chrono::steady_clock::now();
  std::vector<NewJob> jobs;
  jobs.reserve(batch.size());
  for (Pending& p : batch) jobs.push_back(std::move(p.job));
  try {
    std::vector<Enqueued> results = lane.store.enqueue(jobs);
    note(true, began);
    if (options_.observer) options_.observer->committed(batch.size());
    {
      std::lock_guard lock(mutex_);
      stats_.batches += 1;
      stats_.jobs += batch.size();
      stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, batch.size());
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].done(Result{results[i].created ? Outcome::kCreated : Outcome::kDuplicate,
                           std::move(results[i]), std::move(jobs[i])});
    }
  } catch (const Unavailable& e) {
    spdlog::warn("database unavailable: {}", e.what());
    lane.schema_current = false;
    note(false, began);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].done(Result{Outcome::kUnavailable, {}, std::move(jobs[i])});
    }
  } catch (const std::exception& e) {
    // One job the database refuses must not fail the others: store them one at a time.
    if (batch.size() == 1) {
      spdlog::error("enqueue refused by the database: {}", e.what());
      batch[0].done(Result{Outcome::kFailed, {}, std::move(jobs[0])});
      return;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      std::vector<Pending> one;
      one.push_back(Pending{std::move(jobs[i]), std::move(batch[i].done)});
      commit(lane, one);
    }
  }
}

}  // namespace flare::jobs
