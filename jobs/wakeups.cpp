#include "jobs/wakeups.hpp"

#include <spdlog/spdlog.h>

#include "jobs/store.hpp"

namespace flare::jobs {

Wakeups::Wakeups(const std::string& database_url, std::chrono::milliseconds at_least_every)
    : at_least_every_(at_least_every), thread_([this, database_url] { listen(database_url); }) {}

Wakeups::~Wakeups() { stop(); }

std::uint64_t Wakeups::count() const {
  std::lock_guard lock(mutex_);
  return count_;
}

void Wakeups::next(std::uint64_t seen, std::function<void()> wake) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    if (count_ == seen) {
      waiting_.push_back(std::move(wake));
      return;
    }
  }
  wake();
}

void Wakeups::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    waiting_.clear();
  }
  stopped_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Wakeups::listen(const std::string& database_url) {
  Store store(database_url);
  for (;;) {
    bool listening = true;
    try {
      store.wait_for_jobs(at_least_every_);
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
      ++count_;
      woken.swap(waiting_);
    }
    for (auto& wake : woken) wake();
  }
}

}  // namespace flare::jobs
