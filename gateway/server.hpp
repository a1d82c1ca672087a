// The HTTP front: Beast async HTTP/1.1 (plain or TLS), keep-alive, header-first reads, per-route
// body limits, timeouts and graceful stop. Enqueues go to the committer and other database work
// to the pool; network threads never wait on the database.
#pragma once

#include <memory>

#include "config/config.hpp"
#include "gateway/metrics.hpp"
#include "jobs/committer.hpp"
#include "jobs/pool.hpp"
#include "jobs/wakeups.hpp"

namespace flare::gateway {

class Server {
 public:
  // Binds the listening socket; throws std::runtime_error when it cannot, or when the TLS
  // certificate or key cannot be loaded.
  Server(const config::Config& config, jobs::Committer& committer, jobs::Pool& pool,
         jobs::Wakeups& wakeups, Metrics& metrics);
  ~Server();

  // Serves until stop(), then finishes the requests in flight (10 s at most) and returns.
  void run();
  // From any thread: stop accepting, close idle connections, let run() return when drained.
  void stop();
  // From any thread: load server.tls's files again for the connections accepted from now on;
  // false (and the previous certificate kept) when they cannot be loaded or TLS is off.
  bool reload_tls();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flare::gateway
