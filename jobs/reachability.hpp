// Whether the database answers, as one group of connections sees it: the committer's lanes, the
// jobs API's pool, the push workers. After a failed contact the group waits before the next one,
// a pause that doubles from 100 ms to 5 s, and its requests fail at once meanwhile: a database
// that is down sees one connection attempt per pause from each group, not one per request, and
// its log one warning per group when it goes away. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

#include "jobs/observer.hpp"

namespace flare::jobs {

class Reachability {
 public:
  static constexpr std::chrono::milliseconds kFirstPause{100};
  static constexpr std::chrono::milliseconds kLongestPause{5000};

  // `group` names the connections in the log and the metrics ("committer", "api", "workers");
  // `observer` may be null.
  Reachability(std::string group, Observer* observer);

  // True when the caller may contact the database now: it answered last time, or the pause after
  // the last failure is over, and no other caller of the group is trying already.
  bool may_try();
  // Whether the last contact found no database.
  bool down() const { return !up_; }
  // When the group may try again, while the database is down.
  std::chrono::steady_clock::time_point next_try();

  // A contact ended with an answer, an error of the database's own included.
  void answered();
  // A contact found no database (Unavailable); `why` is one line.
  void failed(std::string_view why);

 private:
  using Clock = std::chrono::steady_clock;

  const std::string group_;
  Observer* const observer_;
  std::atomic<bool> up_{true};
  std::mutex mutex_;
  Clock::time_point down_since_;
  Clock::time_point next_try_;
  std::chrono::milliseconds pause_ = kFirstPause;
};

}  // namespace flare::jobs
