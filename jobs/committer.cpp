#include "jobs/committer.hpp"

#include <spdlog/spdlog.h>

namespace flare::jobs {

Committer::Committer(std::unique_ptr<Store> store, CommitterOptions options)
    : store_(std::move(store)), options_(options), thread_([this] { run(); }) {}

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
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

Committer::Stats Committer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Committer::run() {
  check_health();
  auto next_check = std::chrono::steady_clock::now() + options_.health_interval;
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_until(lock, next_check, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty() && stopping_) return;
      std::size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch.empty() || !schema_current_) {
      // Idle, or not ready to write: ask the database how it is (and migrate if allowed).
      check_health();
      next_check = std::chrono::steady_clock::now() + options_.health_interval;
    }
    if (!batch.empty()) commit(batch);
  }
}

void Committer::check_health() {
  try {
    if (options_.auto_migrate && store_->schema_version() < Store::latest_version()) {
      store_->migrate();
    }
    int version = store_->schema_version();
    // Migrations only add, so a newer schema serves an older binary during a rolling upgrade.
    schema_current_ = version >= Store::latest_version();
    if (!schema_current_) {
      spdlog::warn("database schema is at version {}, this binary needs {}: run migrate", version,
                   Store::latest_version());
    }
  } catch (const std::exception& e) {
    schema_current_ = false;
    spdlog::warn("database unavailable: {}", e.what());
  }
  bool was = ready_.exchange(schema_current_);
  if (was != schema_current_) spdlog::info("database {}", schema_current_ ? "ready" : "not ready");
}

void Committer::commit(std::vector<Pending>& batch) {
  if (!schema_current_) {
    for (Pending& p : batch) p.done(Result{Outcome::kUnavailable, {}, std::move(p.job)});
    return;
  }
  std::vector<NewJob> jobs;
  jobs.reserve(batch.size());
  for (Pending& p : batch) jobs.push_back(std::move(p.job));
  try {
    std::vector<Enqueued> results = store_->enqueue(jobs);
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
    schema_current_ = false;
    if (ready_.exchange(false)) spdlog::info("database not ready");
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
      commit(one);
    }
  }
}

}  // namespace flare::jobs
