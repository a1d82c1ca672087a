// Whether the database answers, as one group of connections sees it: the committer's lanes, the
// jobs API's pool, the push workers. After a contact that found no database the group waits
// before the next one, a pause that doubles from 100 ms to 5 s, and its requests fail at once
// meanwhile: a database that is down sees one connection attempt per pause from each group, not
// one per request, and its log one warning per group when it goes away. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "jobs/observer.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

class Reachability {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kFirstPause{100};
  static constexpr std::chrono::milliseconds kLongestPause{5000};

  // `group` names the connections in the log and the metrics ("committer", "api", "workers");
  // `observer` may be null; `now` is the clock (tests pass their own).
  Reachability(std::string group, Observer* observer,
               std::function<Clock::time_point()> now = Clock::now);

  // True when the calling thread may contact the database now: it answered last time, or the
  // pause is over and no other thread is trying already (the one try of the pause is then this
  // thread's, and it must tell how it ended: answered() or failed()).
  bool may_try();
  // Whether the last contact found no database.
  bool down() const { return !up_; }
  // When the group may try again, while the database is down.
  Clock::time_point next_try();

  // A contact ended with an answer, an error of the database's own included. While the database
  // is down, only the thread whose try it is speaks for it: a contact begun before the outage
  // tells nothing of now.
  void answered();
  // A contact ended without an answer (or, when `e.answered()`, with one).
  void failed(const Unavailable& e);

 private:
  const std::string group_;
  Observer* const observer_;
  const std::function<Clock::time_point()> now_;
  std::atomic<bool> up_{true};
  std::mutex mutex_;
  Clock::time_point down_since_;
  Clock::time_point next_try_;
  std::chrono::milliseconds pause_ = kFirstPause;
  std::thread::id trying_;  // the thread whose try it is, while one is under way
};

}  // namespace flare::jobs
