#include "jobs/wakeups.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "jobs/store.hpp"

namespace flare::jobs {

Wakeups::Wakeups(const std::string& database_url, std::size_t max_waiting,
                 std::chrono::milliseconds at_least_every)
    : max_waiting_(max_waiting),
      at_least_every_(at_least_every),
      thread_([this, database_url] { listen(database_url); }) {}

Wakeups::~Wakeups() { stop(); }

std::uint64_t Wakeups::count() const {
  std::lock_guard lock(mutex_);
  return count_;
}

std::size_t Wakeups::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

bool Wakeups::next(std::uint64_t seen, std::function<void()> wake) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    if (count_ == seen) {
      if (waiting_.size() >= max_waiting_) return false;
      waiting_.push_back(std::move(wake));
      if (waiting_.size() == 1) changed_.notify_all();  // the listener may be idle
      return true;
    }
  }
  wake();
  return true;
}

void Wakeups::stop() {
  std::vector<std::function<void()>> woken;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    woken.swap(waiting_);
  }
  changed_.notify_all();
  for (auto& wake : woken) wake();
  if (thread_.joinable()) thread_.join();
}

void Wakeups::listen(const std::string& database_url) {
  Store store(database_url);
  auto last = std::chrono::steady_clock::now();
  auto waited = last - at_least_every_;  // when a claim last waited: none yet
  bool listening = false;                // the connection LISTENs
  bool notified = false;                 // since the last wake-up
  for (;;) {
    {
      // No claim has waited for a while: the connection stops listening, so that commits stop
      // waking it and its backend for nobody (bench/README.md, note 57), until a claim waits.
      std::unique_lock lock(mutex_);
      auto now = std::chrono::steady_clock::now();
      if (!waiting_.empty()) waited = now;
      if (waiting_.empty() && now - waited >= at_least_every_) {
        if (listening) {
          lock.unlock();
          store.stop_waiting_for_jobs();
          lock.lock();
          listening = false;
        }
        changed_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
        if (stopping_) return;
        waited = std::chrono::steady_clock::now();
      }
    }
    // A tenth of a second at a time at most, so that stop() is never kept waiting longer; and
    // no later than a notification's wake-up is due.
    auto now = std::chrono::steady_clock::now();
    auto slice = kGap;
    if (notified) {
      slice = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(last + kGap - now),
                         std::chrono::milliseconds(0), kGap);
    }
    bool reachable = true;
    bool began = false;  // listening from now on: what committed before was not heard
    try {
      notified = store.wait_for_jobs(listening ? slice : std::chrono::milliseconds(0)) || notified;
      began = !listening;
      listening = true;
    } catch (const std::exception& e) {
      // Without the database no claim finds anything; the waiters still wake on time.
      spdlog::debug("long-poll wake-ups: {}", e.what());
      reachable = false;
      listening = false;
    }
    std::vector<std::function<void()>> woken;
    {
      std::unique_lock lock(mutex_);
      if (!reachable) changed_.wait_for(lock, at_least_every_, [this] { return stopping_; });
      if (stopping_) return;
      now = std::chrono::steady_clock::now();
      if (!began && !(notified && now - last >= kGap) && now - last < at_least_every_) continue;
      last = now;
      notified = false;
      ++count_;
      if (!waiting_.empty()) waited = now;
      woken.swap(waiting_);
    }
    for (auto& wake : woken) wake();
  }
}

}  // namespace flare::jobs
