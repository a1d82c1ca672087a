#include "jobs/worker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace flare::jobs {

Workers::Workers(const std::string& database_url, WorkerOptions options, MakeDeliverer make,
                 Backoff backoff)
    : options_(std::move(options)),
      backoff_(std::move(backoff)),
      reachability_("workers", options_.observer) {
  for (int i = 0; i < options_.concurrency; ++i) deliverers_.push_back(make());
  threads_.emplace_back([this, database_url] { listen(database_url); });
  for (auto& d : deliverers_) {
    threads_.emplace_back([this, &d, database_url] { work(*d, database_url); });
  }
}

Workers::~Workers() { stop(std::chrono::milliseconds(0)); }

void Workers::stop(std::chrono::milliseconds drain) {
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
    changed_.wait_for(lock, drain, [this] { return busy_ == 0; });
  }
  for (auto& d : deliverers_) d->abandon();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Workers::wait(std::uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return wakeups_ != seen || stopping_; });
}

void Workers::listen(const std::string& database_url) {
  Store store(database_url);
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    bool woken = false;
    bool listening = false;
    if (reachability_.may_try()) {
      try {
        woken = store.wait_for_jobs(options_.poll_interval);
        listening = true;
        reachability_.answered();
      } catch (const Unavailable& e) {
        reachability_.failed(e);
      } catch (const std::exception& e) {
        reachability_.answered();  // refused: the database is there
        spdlog::warn("workers: not listening for new jobs: {}", e.what());
      }
    }
    if (!listening) {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, options_.poll_interval, [this] { return stopping_; });
    }
    if (woken) {
      std::lock_guard lock(mutex_);
      ++wakeups_;
      changed_.notify_all();
    }
  }
}

void Workers::work(Deliverer& deliverer, const std::string& database_url) {
  Store store(database_url);
  ClaimScope scope{{}, {}, options_.sources};
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      seen = wakeups_;
      ++busy_;
    }
    std::vector<Job> claimed;
    // While the database is down, one claim per pause for all the workers, not one each.
    if (reachability_.may_try()) {
      try {
        claimed = store.claim(scope, 1, options_.lease_seconds);
        reachability_.answered();
        if (!claimed.empty()) record(store, claimed[0], deliverer.deliver(claimed[0]));
      } catch (const Unavailable& e) {
        // The lease runs out and another attempt follows: at least once, never lost.
        reachability_.failed(e);
      } catch (const std::exception& e) {
        reachability_.answered();  // the database refused the claim, or answered it before this
        spdlog::warn("workers: {}", e.what());
      }
    }
    {
      std::lock_guard lock(mutex_);
      --busy_;
      changed_.notify_all();
    }
    if (claimed.empty()) wait(seen, options_.poll_interval);
  }
}

void Workers::record(Store& store, const Job& job, const Attempt& attempt) {
  const std::string token = job.lease_token.value_or("");
  auto tell = [&](std::string_view outcome) {
    if (options_.observer) options_.observer->attempted(job.source.value_or(""), outcome);
  };
  switch (attempt.result) {
    case Attempt::Result::kSucceeded: {
      Changed c = store.complete(job.project_id, job.id, token);
      std::string_view outcome = c.change == Change::kDone ? "succeeded" : "lease_lost";
      spdlog::info("delivered job={} source={} attempt={} outcome={}", job.id,
                   job.source.value_or("-"), job.attempts, outcome);
      return tell(outcome);
    }
    case Attempt::Result::kFailed: {
      Changed c =
          store.fail(job.project_id, job.id, token, attempt.error, true, [&](const Job& failed) {
            return attempt.retry_after ? *attempt.retry_after : backoff_(failed);
          });
      std::string_view outcome =
          c.change == Change::kDone ? to_string(c.job->status) : "lease_lost";
      spdlog::info("delivered job={} source={} attempt={} outcome={} error=\"{}\"", job.id,
                   job.source.value_or("-"), job.attempts, outcome, attempt.error);
      return tell(outcome);
    }
    case Attempt::Result::kAbandoned:
      store.release(job.project_id, job.id, token);
      spdlog::info("released job={} source={}: stopping", job.id, job.source.value_or("-"));
      return tell("released");
  }
}

}  // namespace flare::jobs
