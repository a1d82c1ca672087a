#include "jobs/reachability.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace flare::jobs {

Reachability::Reachability(std::string group, Observer* observer,
                           std::function<Clock::time_point()> now)
    : group_(std::move(group)), observer_(observer), now_(std::move(now)) {}

bool Reachability::may_try() {
  if (up_) return true;
  std::lock_guard lock(mutex_);
  if (trying_ != std::thread::id() || now_() < next_try_) return false;
  trying_ = std::this_thread::get_id();
  return true;
}

Reachability::Clock::time_point Reachability::next_try() {
  std::lock_guard lock(mutex_);
  return next_try_;
}

void Reachability::answered() {
  if (up_) return;
  std::lock_guard lock(mutex_);
  if (up_ || trying_ != std::this_thread::get_id()) return;
  trying_ = {};
  up_ = true;
  pause_ = kFirstPause;
  auto down_for = std::chrono::duration_cast<std::chrono::milliseconds>(now_() - down_since_);
  spdlog::info("database reachable again ({}) after {} ms", group_, down_for.count());
}

void Reachability::failed(const Unavailable& e) {
  if (e.answered()) return answered();
  if (observer_) observer_->database_error();
  std::lock_guard lock(mutex_);
  Clock::time_point now = now_();
  if (up_) {
    up_ = false;
    down_since_ = now;
    pause_ = kFirstPause;
    next_try_ = now + pause_;
    if (observer_) observer_->database_unreachable(group_);
    spdlog::warn(
        "database unreachable ({}): {}; requests fail at once while it tries again after {} ms, "
        "then less often, up to every {} ms",
        group_, e.what(), kFirstPause.count(), kLongestPause.count());
    return;
  }
  if (trying_ != std::this_thread::get_id()) return;  // a contact begun before the outage
  trying_ = {};
  pause_ = std::min(pause_ * 2, kLongestPause);
  next_try_ = now + pause_;
}

}  // namespace flare::jobs
