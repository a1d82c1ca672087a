// The Prometheus metrics of GET /metrics (text format 0.0.4). Counting is lock-free or under a
// short lock; rendering happens on the scraping connection's thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jobs/job.hpp"
#include "jobs/observer.hpp"
#include "jobs/store.hpp"
#include "jobs/traffic.hpp"

namespace flare::gateway {

// Cumulative buckets with fixed upper bounds, as Prometheus histograms are.
template <std::size_t N>
class Histogram {
 public:
  explicit Histogram(std::array<double, N> bounds) : bounds_(bounds) {}
  void observe(double value);
  // name_bucket{labels,le=...}, name_sum{labels}, name_count{labels}; `labels` as written in
  // braces (e.g. source="a"), or empty.
  void render(std::string& out, std::string_view name, std::string_view labels = {}) const;

 private:
  std::array<double, N> bounds_;
  std::array<std::atomic<std::uint64_t>, N + 1> counts_{};  // the last one: above every bound
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Why the gateway closed a connection on a timer.
enum class Timeout {
  kIdle,       // no request began within server.idle_timeout_ms: a kept-alive connection's end
  kHeader,     // a request's header began and did not end within server.idle_timeout_ms
  kBody,       // a body still arriving after server.read_timeout_ms
  kHandshake,  // a TLS handshake not done within server.read_timeout_ms
  kWrite,      // a response the client did not take within server.read_timeout_ms
};
inline constexpr std::size_t kTimeouts = 5;
std::string_view timeout_name(Timeout timeout);

class Metrics final : public jobs::Observer {
 public:
  // How long the readings from the database (the queue's, the tables', the routes') may be
  // reused before the next scrape refreshes them.
  static constexpr std::chrono::seconds kReadingsMaxAge{5};

  // `traffic` (may be null): told of each webhook and attempt too, for the console's charts.
  explicit Metrics(jobs::Traffic* traffic = nullptr);

  // A finished HTTP request; `source` is set for webhook routes ("" for an unknown source).
  // Both texts must outlive the metrics (a configured source name, a static outcome name):
  // counting a request allocates nothing.
  void request(const std::string* source, std::string_view outcome,
               std::chrono::steady_clock::duration took);

  // True when the readings are older than kReadingsMaxAge and nobody refreshes them yet: the
  // caller then does, and hands the result to readings_taken (or readings_failed).
  bool start_readings_refresh();
  void readings_taken(const jobs::QueueHealth& health, const std::vector<jobs::RouteState>& routes);
  void readings_failed();

  // A connection closed on a timer.
  void timed_out(Timeout timeout);

  // `claims_waiting`: long-polling claims waiting for jobs now.
  std::string render(std::size_t claims_waiting) const;

  void committed(std::size_t jobs, std::chrono::steady_clock::duration took) override;
  void database_error() override;
  void database_unreachable(std::string_view group) override;
  void attempted(std::string_view source, std::string_view route, std::string_view outcome,
                 std::chrono::milliseconds took) override;
  void pruned(std::int64_t payloads, std::int64_t rows) override;

 private:
  // What this process's push workers saw of one route.
  struct Route {
    Route();
    std::map<std::string, std::uint64_t> outcomes;
    Histogram<13> durations;
  };

  jobs::Traffic* const traffic_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string_view, std::string_view>, std::uint64_t> webhooks_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Route>> routes_;
  std::vector<jobs::RouteState> route_states_;        // as last read, with the queue
  std::map<std::string, std::uint64_t> unreachable_;  // by group
  jobs::QueueHealth health_;                          // as last read
  std::chrono::steady_clock::time_point readings_at_{};
  bool refreshing_readings_ = false;

  Histogram<14> durations_;
  Histogram<10> batch_sizes_;
  Histogram<14> commit_durations_;
  std::atomic<std::uint64_t> db_errors_{0};
  std::array<std::atomic<std::uint64_t>, kTimeouts> timeouts_{};
  std::atomic<std::int64_t> pruned_payloads_{0};
  std::atomic<std::int64_t> pruned_rows_{0};
};

}  // namespace flare::gateway
