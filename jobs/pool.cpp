#include "jobs/pool.hpp"

#include <spdlog/spdlog.h>

#include <memory>

namespace flare::jobs {

Pool::Pool(const std::string& database_url, int threads, Observer* observer,
           std::size_t max_pending)
    : max_pending_(max_pending), reachability_("api", observer) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, database_url] {
      Store store(database_url);
      run(store);
    });
  }
}

Pool::~Pool() { stop(); }

void Pool::submit(Task task, Failed failed) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < max_pending_) {
      queue_.push_back(Pending{std::move(task), std::move(failed)});
      wake_.notify_one();
      return;
    }
  }
  failed(Outcome::kUnavailable);
}

void Pool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Pool::run(Store& store) {
  for (;;) {
    Pending next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    if (!reachability_.may_try()) {
      next.failed(Outcome::kUnavailable);
      continue;
    }
    try {
      next.task(store);
      reachability_.answered();
    } catch (const Unavailable& e) {
      reachability_.failed(e);
      next.failed(Outcome::kUnavailable);
    } catch (const std::exception& e) {
      reachability_.answered();
      spdlog::error("{}", e.what());
      next.failed(Outcome::kFailed);
    }
  }
}

}  // namespace flare::jobs
