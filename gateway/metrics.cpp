#include "gateway/metrics.hpp"

#include <charconv>
#include <cmath>

namespace flare::gateway {
namespace {

// Seconds, from half a millisecond (a commit on a quiet machine) to ten.
constexpr std::array<double, 14> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};

// A label value: backslash, double quote and newline escaped.
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The shortest text that reads back as v, without an exponent where one is not needed: a
// bucket's bound is le="0.005", not le="0.0050000000000000001", and a sum of a million jobs is
// 1000000, not 1e+06.
std::string number(double v) {
  char buf[64];
  double size = std::fabs(v);
  auto format = size < 1e15 && (size == 0 || size >= 1e-6) ? std::chars_format::fixed
                                                           : std::chars_format::general;
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v, format).ptr);
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// One sample per {source, outcome} pair of a counter.
template <class Counts>
void by_source_and_outcome(std::string& out, std::string_view name, const Counts& counts) {
  for (const auto& [labels, n] : counts) {
    out.append(name).append("{source=\"").append(label(labels.first));
    out.append("\",outcome=\"").append(label(labels.second)).append("\"} ");
    out.append(std::to_string(n)).append("\n");
  }
}

}  // namespace

template <std::size_t N>
void Histogram<N>::observe(double value) {
  std::size_t i = 0;
  while (i < N && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double seen = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(seen, seen + value, std::memory_order_relaxed)) {
  }
}

template <std::size_t N>
void Histogram<N>::render(std::string& out, std::string_view name, std::string_view labels) const {
  std::string braces, before_le;
  if (!labels.empty()) {
    braces.append("{").append(labels).append("}");
    before_le.append(labels).append(",");
  }
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= N; ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    out.append(name).append("_bucket{").append(before_le).append("le=\"");
    out.append(i < N ? number(bounds_[i]) : "+Inf");
    out.append("\"} ").append(std::to_string(cumulative)).append("\n");
  }
  // The count is the +Inf bucket, so that the two never disagree in one scrape.
  out.append(name).append("_sum").append(braces).append(" ");
  out.append(number(sum_.load(std::memory_order_relaxed))).append("\n");
  out.append(name).append("_count").append(braces).append(" ");
  out.append(std::to_string(cumulative)).append("\n");
}

std::string_view timeout_name(Timeout timeout) {
  constexpr std::string_view kNames[kTimeouts] = {"idle", "header", "body", "handshake", "write"};
  return kNames[static_cast<std::size_t>(timeout)];
}

Metrics::Metrics(jobs::Traffic* traffic)
    : traffic_(traffic),
      durations_(kLatencyBounds),
      batch_sizes_({1, 2, 4, 8, 16, 32, 64, 128, 256, 512}),
      commit_durations_(kLatencyBounds) {}

void Metrics::request(const std::string* source, std::string_view outcome,
                      std::chrono::steady_clock::duration took) {
  durations_.observe(std::chrono::duration<double>(took).count());
  if (source == nullptr) return;
  if (traffic_ != nullptr && !source->empty()) traffic_->received(*source, outcome);
  std::lock_guard lock(mutex_);
  ++webhooks_[{*source, outcome}];
}

bool Metrics::start_readings_refresh() {
  std::lock_guard lock(mutex_);
  if (refreshing_readings_ || std::chrono::steady_clock::now() - readings_at_ < kReadingsMaxAge) {
    return false;
  }
  refreshing_readings_ = true;
  return true;
}

void Metrics::readings_taken(const jobs::QueueHealth& health,
                             const std::vector<jobs::RouteState>& routes) {
  std::lock_guard lock(mutex_);
  route_states_ = routes;
  health_ = health;
  readings_at_ = std::chrono::steady_clock::now();
  refreshing_readings_ = false;
}

void Metrics::readings_failed() {
  std::lock_guard lock(mutex_);
  refreshing_readings_ = false;
}

void Metrics::timed_out(Timeout timeout) {
  timeouts_[static_cast<std::size_t>(timeout)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::committed(std::size_t jobs, std::chrono::steady_clock::duration took) {
  batch_sizes_.observe(static_cast<double>(jobs));
  commit_durations_.observe(std::chrono::duration<double>(took).count());
}

void Metrics::pruned(std::int64_t payloads, std::int64_t rows) {
  pruned_payloads_.fetch_add(payloads, std::memory_order_relaxed);
  pruned_rows_.fetch_add(rows, std::memory_order_relaxed);
}

void Metrics::database_error() { db_errors_.fetch_add(1, std::memory_order_relaxed); }

void Metrics::database_unreachable(std::string_view group) {
  std::lock_guard lock(mutex_);
  ++unreachable_[std::string(group)];
}

Metrics::Route::Route()
    : durations({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}) {}

void Metrics::attempted(std::string_view source, std::string_view route, std::string_view outcome,
                        std::chrono::milliseconds took) {
  if (traffic_ != nullptr) traffic_->attempted(source, route, outcome, took);
  std::lock_guard lock(mutex_);
  std::unique_ptr<Route>& r = routes_[{std::string(source), std::string(route)}];
  if (!r) r = std::make_unique<Route>();
  ++r->outcomes[std::string(outcome)];
  // An abandoned attempt's time says nothing of the destination.
  if (outcome != "released") r->durations.observe(std::chrono::duration<double>(took).count());
}

std::string Metrics::render(std::size_t claims_waiting) const {
  std::string out;
  std::lock_guard lock(mutex_);
  header(out, "flare_webhooks_total", "counter",
         "Webhook requests answered, by source and outcome (source \"\": no such source).");
  by_source_and_outcome(out, "flare_webhooks_total", webhooks_);
  header(out, "flare_http_request_duration_seconds", "histogram",
         "Time from a request's header to its response, every route.");
  durations_.render(out, "flare_http_request_duration_seconds");
  header(out, "flare_enqueue_batch_size", "histogram", "Jobs stored per enqueue transaction.");
  batch_sizes_.render(out, "flare_enqueue_batch_size");
  header(out, "flare_enqueue_commit_duration_seconds", "histogram",
         "Time from an enqueue transaction's sending to its commit, the wait behind the one "
         "before it included.");
  commit_durations_.render(out, "flare_enqueue_commit_duration_seconds");
  // Read from the database at most every kReadingsMaxAge, with the routes' states.
  header(out, "flare_queue_depth", "gauge",
         "Jobs of pull workers and deliveries of push workers, by status.");
  for (auto [kind, counts] : {std::pair{"pull", &health_.pull}, std::pair{"push", &health_.push}}) {
    for (std::size_t i = 0; i < counts->size(); ++i) {
      out.append("flare_queue_depth{kind=\"").append(kind).append("\",status=\"");
      out.append(jobs::to_string(jobs::kQueueStatuses[i])).append("\"} ");
      out.append(std::to_string((*counts)[i])).append("\n");
    }
  }
  header(out, "flare_queue_oldest_due_seconds", "gauge",
         "How long the longest-due job (pull) or delivery (push) has been due; 0: none is.");
  out.append("flare_queue_oldest_due_seconds{kind=\"pull\"} ")
      .append(std::to_string(health_.pull_oldest_due_seconds))
      .append("\nflare_queue_oldest_due_seconds{kind=\"push\"} ")
      .append(std::to_string(health_.push_oldest_due_seconds))
      .append("\n");
  header(out, "flare_dead_jobs", "gauge",
         "Dead jobs whose payload is kept, every configured project.");
  out += "flare_dead_jobs " + std::to_string(health_.dead) + "\n";
  header(out, "flare_table_dead_tuples", "gauge",
         "Dead tuples of the queue's tables, as autovacuum counts them.");
  for (const auto& [table, n] : health_.dead_tuples) {
    out.append("flare_table_dead_tuples{table=\"").append(label(table)).append("\"} ");
    out.append(std::to_string(n)).append("\n");
  }
  header(out, "flare_oldest_transaction_seconds", "gauge",
         "Age of the oldest transaction of a client session of this database: vacuum keeps "
         "what it may still see.");
  out += "flare_oldest_transaction_seconds " + std::to_string(health_.oldest_transaction_seconds) +
         "\n";
  auto route_labels = [](std::string_view source, std::string_view route) {
    std::string labels = "source=\"";
    labels.append(label(source)).append("\",route=\"").append(label(route)).append("\"");
    return labels;
  };
  header(out, "flare_delivery_attempts_total", "counter",
         "Push attempts by this process that ended, by route and outcome (succeeded, retrying, "
         "dead, lease_lost, released).");
  for (const auto& [key, r] : routes_) {
    for (const auto& [outcome, n] : r->outcomes) {
      out.append("flare_delivery_attempts_total{").append(route_labels(key.first, key.second));
      out.append(",outcome=\"").append(label(outcome)).append("\"} ");
      out.append(std::to_string(n)).append("\n");
    }
  }
  header(out, "flare_delivery_attempt_duration_seconds", "histogram",
         "Time from a push attempt's start to its answer, timeout or error, by route.");
  for (const auto& [key, r] : routes_) {
    r->durations.render(out, "flare_delivery_attempt_duration_seconds",
                        route_labels(key.first, key.second));
  }
  header(out, "flare_route_deliveries_waiting", "gauge",
         "Deliveries queued or retrying, by route, read with the queue.");
  for (const jobs::RouteState& s : route_states_) {
    out.append("flare_route_deliveries_waiting{").append(route_labels(s.source, s.route));
    out.append("} ").append(std::to_string(s.waiting)).append("\n");
  }
  header(out, "flare_route_attempts_in_flight", "gauge",
         "Push attempts under way over every process, by route, read with the queue.");
  for (const jobs::RouteState& s : route_states_) {
    out.append("flare_route_attempts_in_flight{").append(route_labels(s.source, s.route));
    out.append("} ").append(std::to_string(s.running)).append("\n");
  }
  header(out, "flare_route_state", "gauge",
         "1 for each route's breaker state (closed, open, paused), else 0.");
  for (const jobs::RouteState& s : route_states_) {
    for (std::string_view state : {"closed", "open", "paused"}) {
      out.append("flare_route_state{").append(route_labels(s.source, s.route));
      out.append(",state=\"").append(state).append("\"} ");
      out.append(s.state == state ? "1" : "0").append("\n");
    }
  }
  header(out, "flare_timeouts_total", "counter",
         "Connections closed on a timer, by what was late: idle (a kept-alive connection's end), "
         "header, body, handshake, write.");
  for (std::size_t i = 0; i < kTimeouts; ++i) {
    out.append("flare_timeouts_total{reason=\"").append(timeout_name(static_cast<Timeout>(i)));
    out.append("\"} ").append(std::to_string(timeouts_[i].load())).append("\n");
  }
  header(out, "flare_pruned_total", "counter",
         "What retention removed in this process: payloads emptied, rows deleted.");
  out += "flare_pruned_total{what=\"payloads\"} " + std::to_string(pruned_payloads_.load()) +
         "\nflare_pruned_total{what=\"rows\"} " + std::to_string(pruned_rows_.load()) + "\n";
  header(out, "flare_claims_waiting", "gauge",
         "Long-polling claims of the jobs API waiting for jobs in this process (256 at most).");
  out += "flare_claims_waiting " + std::to_string(claims_waiting) + "\n";
  header(out, "flare_db_errors_total", "counter",
         "Contacts with the database that failed: unreachable, restarting, timed out.");
  out += "flare_db_errors_total " + std::to_string(db_errors_.load()) + "\n";
  header(out, "flare_db_unreachable_total", "counter",
         "Times a group of connections (committer, API pool, workers) found the database gone.");
  for (const auto& [group, n] : unreachable_) {
    out.append("flare_db_unreachable_total{group=\"").append(label(group)).append("\"} ");
    out.append(std::to_string(n)).append("\n");
  }
  return out;
}

}  // namespace flare::gateway
