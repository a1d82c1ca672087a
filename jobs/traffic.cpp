#include "jobs/traffic.hpp"

#include <spdlog/spdlog.h>

#include "jobs/store.hpp"

namespace flare::jobs {
namespace {

std::int64_t this_minute() {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return now - now % 60;
}

}  // namespace

void TrafficRow::add(const TrafficRow& other) {
  received += other.received;
  duplicates += other.duplicates;
  rejected += other.rejected;
  succeeded += other.succeeded;
  failed += other.failed;
  for (std::size_t i = 0; i < durations.size(); ++i) durations[i] += other.durations[i];
}

Traffic::Traffic(const std::string& database_url)
    : thread_([this, database_url] { run(database_url); }) {}

Traffic::~Traffic() { stop(); }

TrafficRow& Traffic::row(std::string_view source, std::string_view route) {
  std::int64_t minute = this_minute();
  auto found = rows_.find(std::tuple(minute, source, route));
  if (found != rows_.end()) return found->second;
  TrafficRow& r = rows_[Key(minute, source, route)];
  r.minute = minute;
  r.source = source;
  r.route = route;
  return r;
}

void Traffic::received(std::string_view source, std::string_view outcome) {
  std::lock_guard lock(mutex_);
  TrafficRow& r = row(source, "");
  if (outcome == "accepted") {
    ++r.received;
  } else if (outcome == "duplicate") {
    ++r.duplicates;
  } else if (outcome != "unavailable" && outcome != "internal_error" && outcome != "challenge") {
    // Refused: forged, stale, malformed or too large. A request the database could not take,
    // or a provider's handshake, is neither received nor refused.
    ++r.rejected;
  }
}

void Traffic::attempted(std::string_view source, std::string_view route, std::string_view outcome,
                        std::chrono::milliseconds took) {
  // A released attempt was not made; a lost lease's outcome is another attempt's to tell.
  if (outcome == "released" || outcome == "lease_lost") return;
  std::lock_guard lock(mutex_);
  TrafficRow& r = row(source, route);
  ++(outcome == "succeeded" ? r.succeeded : r.failed);
  std::size_t bucket = 0;
  while (bucket < kTrafficDurationBounds.size() && took.count() > kTrafficDurationBounds[bucket]) {
    ++bucket;
  }
  ++r.durations[bucket];
}

void Traffic::run(const std::string& database_url) {
  Store store(database_url);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    changed_.wait_for(lock, kFlushEvery, [this] { return stopping_.load(); });
    lock.unlock();
    flush(store);
    lock.lock();
  }
  // What was counted while the last pass wrote.
  lock.unlock();
  flush(store);
}

void Traffic::flush(Store& store) {
  std::vector<TrafficRow> rows;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, row] : rows_) rows.push_back(std::move(row));
    rows_.clear();
  }
  if (rows.empty()) return;
  try {
    store.add_traffic(rows);
  } catch (const std::exception& e) {
    spdlog::warn(
        "traffic: could not record {} rows for the console's charts, kept for the next "
        "try: {}",
        rows.size(), e.what());
    std::int64_t oldest = this_minute() - std::chrono::seconds(kTrafficKept).count();
    std::lock_guard lock(mutex_);
    for (TrafficRow& r : rows) {
      if (r.minute < oldest) continue;
      auto [at, fresh] = rows_.try_emplace(Key(r.minute, r.source, r.route), r);
      if (!fresh) at->second.add(r);
    }
  }
}

void Traffic::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace flare::jobs
