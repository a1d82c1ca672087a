#include "jobs/reachability.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace flare::jobs {

Reachability::Reachability(std::string group, Observer* observer)
    : group_(std::move(group)), observer_(observer) {}

bool Reachability::may_try() {
  if (up_) return true;
  std::lock_guard lock(mutex_);
  Clock::time_point now = Clock::now();
  if (now < next_try_) return false;
  // The others fail at once until this try has ended.
  next_try_ = now + pause_;
  return true;
}

std::chrono::steady_clock::time_point Reachability::next_try() {
  std::lock_guard lock(mutex_);
  return next_try_;
}

void Reachability::answered() {
  if (up_) return;
  std::lock_guard lock(mutex_);
  if (up_) return;
  up_ = true;
  auto down_for = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - down_since_);
  spdlog::info("database reachable again ({}) after {} ms", group_, down_for.count());
}

void Reachability::failed(std::string_view why) {
  if (observer_) observer_->database_error();
  std::lock_guard lock(mutex_);
  Clock::time_point now = Clock::now();
  if (up_) {
    up_ = false;
    down_since_ = now;
    pause_ = kFirstPause;
    if (observer_) observer_->database_unreachable(group_);
    spdlog::warn(
        "database unreachable ({}): {}; requests fail at once while it tries again after {} ms, "
        "then less often, up to every {} ms",
        group_, why, kFirstPause.count(), kLongestPause.count());
  } else {
    pause_ = std::min(pause_ * 2, kLongestPause);
  }
  next_try_ = now + pause_;
}

}  // namespace flare::jobs
