// Wake-ups for long-polling claims: a thread LISTENing on its own connection tells whoever
// waits that jobs may have become due: when a commit anywhere notifies (at most every kGap, so
// that a busy queue does not turn each waiting claim into a claim per commit), and at least
// once a second besides (a retry's backoff ends without a notification). It listens only while
// claims wait, and for `at_least_every` after the last: when it begins, it wakes them at once,
// since what committed before it listened was not heard.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flare::jobs {

class Wakeups {
 public:
  static constexpr std::chrono::milliseconds kGap{100};

  // At most `max_waiting` waiters at once.
  Wakeups(const std::string& database_url, std::size_t max_waiting,
          std::chrono::milliseconds at_least_every = std::chrono::seconds(1));
  ~Wakeups();
  Wakeups(const Wakeups&) = delete;
  Wakeups& operator=(const Wakeups&) = delete;

  // How many wake-ups there have been: taken before a claim, handed to next() after it.
  std::uint64_t count() const;
  // How many wait for the next wake-up.
  std::size_t waiting() const;
  // Calls `wake` once, on the listening thread, at the first wake-up after `seen`, or when
  // stopping (at once, on the caller's thread, when one came already). False, and `wake` is
  // never called, when it cannot wait: max_waiting are waiting, or stop() was called.
  bool next(std::uint64_t seen, std::function<void()> wake);
  // Wakes every waiter and stops listening. Idempotent.
  void stop();

 private:
  void listen(const std::string& database_url);

  const std::size_t max_waiting_;
  const std::chrono::milliseconds at_least_every_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;  // stopping, or a claim waits
  std::uint64_t count_ = 0;
  std::vector<std::function<void()>> waiting_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace flare::jobs
