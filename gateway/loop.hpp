// One network thread's event loop and what belongs to it besides its connections: the way in
// from other threads, and the request log lines it gathers. Asio: included by the server and the
// session only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <vector>

#include "gateway/log.hpp"

namespace flare::gateway {

// Work handed to one event loop from other threads (the committer's, the pool's). The first
// item of a burst wakes the loop; the rest join it before it runs, so a commit that completes
// many requests of one loop costs that loop one wake-up, not one each.
class Mailbox {
 public:
  explicit Mailbox(boost::asio::io_context& io) : io_(io) {}

  void post(std::function<void()> fn) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      wake = items_.empty();
      items_.push_back(std::move(fn));
    }
    if (wake) boost::asio::post(io_, [this] { drain(); });
  }

 private:
  void drain() {
    std::vector<std::function<void()>> items;
    {
      std::lock_guard lock(mutex_);
      items.swap(items_);
    }
    for (auto& fn : items) fn();
  }

  boost::asio::io_context& io_;
  std::mutex mutex_;
  std::vector<std::function<void()>> items_;
};

// A loop's request log lines, handed to the logging thread once a few KiB have gathered or
// soon after the first of them: a line is late by at most kDelay.
class RequestLog {
 public:
  explicit RequestLog(boost::asio::io_context& io) : timer_(io) {}

  void add(const LogFields& fields) {
    bool first = batch_.bytes() == 0;
    batch_.add(fields);
    if (batch_.bytes() >= kChunk) {
      batch_.flush();
      timer_.cancel();
    } else if (first) {
      timer_.expires_after(kDelay);
      timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) batch_.flush();
      });
    }
  }

  // After the loop has stopped: what is left.
  void flush() { batch_.flush(); }

 private:
  static constexpr std::size_t kChunk = 4 * 1024;
  static constexpr auto kDelay = std::chrono::milliseconds(50);
  LogBatch batch_;
  boost::asio::steady_timer timer_;
};

// Run by exactly one thread, and each connection lives on one loop for its whole life: its
// handlers need no strand.
struct Loop {
  Loop() : io(1), mailbox(io), log(io) {}
  boost::asio::io_context io;
  Mailbox mailbox;  // the way in from other threads
  RequestLog log;
};

}  // namespace flare::gateway
