// One connection's life: read a request's header, route it, read its body when the route needs
// it, hand the work on, write the response, and again. The Beast read/write chain lives in
// session.cpp alone.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "gateway/api.hpp"
#include "gateway/console.hpp"
#include "gateway/ingest.hpp"
#include "gateway/loop.hpp"
#include "gateway/metrics.hpp"
#include "gateway/origin.hpp"
#include "jobs/committer.hpp"
#include "jobs/pool.hpp"
#include "jobs/wakeups.hpp"

namespace flare::gateway {

// A connection as a stop sees it.
class Connection {
 public:
  virtual ~Connection() = default;
  // From any thread: close now if idle, else after the response in progress.
  virtual void shutdown() = 0;
};

// The live connections, which a stop has to reach. Thread-safe.
class Connections {
 public:
  std::size_t size();
  void add(Connection* key, std::weak_ptr<Connection> connection);
  // Called by each connection as it ends.
  void remove(Connection* key);

  bool stopping() const { return stopping_; }
  // Refuses new work from now on and returns the connections still open; nullopt when a stop
  // began before. `on_last` runs (on that connection's thread) when the last of them ends.
  std::optional<std::vector<std::shared_ptr<Connection>>> stop(std::function<void()> on_last);
  // After the loops have stopped: connections a forced stop left behind call nothing.
  void forget_on_last();

 private:
  std::mutex mutex_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> open_;
  std::atomic<bool> stopping_{false};
  std::function<void()> on_last_;
};

// The bytes of request bodies held at once, across connections (server.body_memory_bytes), from
// their arrival until their requests are answered: however many senders are slow, and however
// slow the database, bodies hold no more.
class BodyBudget {
 public:
  explicit BodyBudget(std::size_t bytes) : limit_(bytes) {}
  // True when `bytes` more fit; they are then held until given back.
  bool take(std::size_t bytes);
  void give(std::size_t bytes) { held_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> held_{0};
};

// What every connection reads and reaches; outlives them all.
struct Context {
  Context(const config::Config& config, jobs::Committer& c, jobs::Pool& p, jobs::Wakeups& w,
          Metrics& m)
      : server(config.server),
        sources(make_sources(config)),
        api(config),
        console(config),
        console_enabled(config.console.enabled),
        committer(c),
        pool(p),
        wakeups(w),
        metrics(m),
        bodies(config.server.body_memory_bytes) {
    for (const config::Project& project : config.projects) projects.push_back(project.id);
  }

  const config::Server& server;
  const Sources sources;
  std::vector<std::string> projects;  // their ids
  const Api api;
  const Console console;
  const bool console_enabled;
  jobs::Committer& committer;
  jobs::Pool& pool;
  jobs::Wakeups& wakeups;
  Metrics& metrics;
  RequestIds request_ids;
  Connections connections;
  BodyBudget bodies;
};

// Serves a connection accepted on `loop`'s thread: over TLS with `tls`, plain when it is null.
void start_session(Context& context, Loop& loop, boost::asio::ip::tcp::socket socket,
                   std::shared_ptr<boost::asio::ssl::context> tls);

}  // namespace flare::gateway
