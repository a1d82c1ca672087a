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
  stopped_.notify_all();
  for (auto& wake : woken) wake();
  if (thread_.joinable()) thread_.join();
}

void Wakeups::listen(const std::string& database_url) {
  Store store(database_url);
  auto last = std::chrono::steady_clock::now();
  bool notified = false;  // since the last wake-up
  for (;;) {
    // A tenth of a second at a time at most, so that stop() is never kept waiting longer; and
    // no later than a notification's wake-up is due.
    auto now = std::chrono::steady_clock::now();
    auto slice = kGap;
    if (notified) {
      slice = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(last + kGap - now),
                         std::chrono::milliseconds(0), kGap);
    }
    bool listening = true;
    try {
      notified = store.wait_for_jobs(slice) || notified;
    } catch (const std::exception& e) {
      // Without the database no claim finds anything; the waiters still wake on time.
      spdlog::debug("long-poll wake-ups: {}", e.what());
      listening = false;
    }
    std::vector<std::function<void()>> woken;
    {
      std::unique_lock lock(mutex_);
      if (!listening) stopped_.wait_for(lock, at_least_every_, [this] { return stopping_; });
      if (stopping_) return;
      now = std::chrono::steady_clock::now();
      if (!(notified && now - last >= kGap) && now - last < at_least_every_) continue;
      last = now;
      notified = false;
      ++count_;
      woken.swap(waiting_);
    }
    for (auto& wake : woken) wake();
  }
}

}  // namespace flare::jobs
