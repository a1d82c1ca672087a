// Retention (docs/operations.md): which jobs each configured retention applies to, and the
// thread that prunes them inside `serve`, one gateway process at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "jobs/observer.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

// The configuration's retentions, one scope per project and per source whose retention differs
// from its project's; those that keep everything for ever are left out.
std::vector<PruneScope> prune_scopes(const config::Config& config);

// A pass at start, then one every `pruning.interval`, on a connection of its own.
class Pruner {
 public:
  Pruner(const std::string& database_url, std::vector<PruneScope> scopes, config::Pruning pruning,
         Observer* observer);
  ~Pruner();
  Pruner(const Pruner&) = delete;
  Pruner& operator=(const Pruner&) = delete;

  // Ends the pass under way after its current transaction, and joins. Idempotent.
  void stop();

 private:
  void run(const std::string& database_url);
  void pass(Store& store);

  const std::vector<PruneScope> scopes_;
  const config::Pruning pruning_;
  Observer* const observer_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace flare::jobs
