// Traffic by minute, for the console's charts (the `traffic` table, docs/console.md): what this
// process received and attempted, counted in memory and added to each minute's row by a thread
// of its own every kFlushEvery, and at stop. Counting takes a short lock and allocates only for a
// minute, source or route not yet counted.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "jobs/observer.hpp"

namespace flare::jobs {

class Store;

// Upper bounds, in ms, of the attempts' duration buckets; the last bucket holds the rest.
inline constexpr std::array<std::int64_t, 11> kTrafficDurationBounds = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

// One minute of one source (route "": what it received) or one of its routes.
struct TrafficRow {
  std::int64_t minute = 0;  // Unix seconds, a multiple of 60
  std::string source;
  std::string route;
  std::int64_t received = 0;
  std::int64_t duplicates = 0;
  std::int64_t rejected = 0;
  std::int64_t succeeded = 0;
  std::int64_t failed = 0;
  std::array<std::int64_t, kTrafficDurationBounds.size() + 1> durations{};
  void add(const TrafficRow& other);
};

// How often a process adds its counts to the table: how far behind a chart may be.
inline constexpr std::chrono::seconds kFlushEvery{10};

// How long the table keeps a minute: the longest chart's span, and a little more.
inline constexpr std::chrono::hours kTrafficKept{26};

class Traffic final : public Observer {
 public:
  explicit Traffic(const std::string& database_url);
  ~Traffic() override;
  Traffic(const Traffic&) = delete;
  Traffic& operator=(const Traffic&) = delete;

  // A webhook request of a configured source answered: "accepted", "duplicate", a refusal, or
  // another outcome (which is not counted).
  void received(std::string_view source, std::string_view outcome);
  // Observer: a push attempt ended; only those with an answer or an error count.
  void attempted(std::string_view source, std::string_view route, std::string_view outcome,
                 std::chrono::milliseconds took) override;
  void committed(std::size_t, std::chrono::steady_clock::duration) override {}
  void database_error() override {}
  void database_unreachable(std::string_view) override {}
  void pruned(std::int64_t, std::int64_t) override {}

  // Adds what is counted to the table, then stops. Idempotent.
  void stop();

 private:
  using Key = std::tuple<std::int64_t, std::string, std::string>;
  TrafficRow& row(std::string_view source, std::string_view route);
  void run(const std::string& database_url);
  // Adds the counted rows to the table; those it could not add are kept, as long as the table
  // would keep them.
  void flush(Store& store);

  std::mutex mutex_;
  std::map<Key, TrafficRow, std::less<>> rows_;
  std::condition_variable changed_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace flare::jobs
