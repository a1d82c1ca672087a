// The back door, for `bench/run --backdoor`: how fast stored jobs leave the gateway, against an
// empty database the script made. CPU figures are cores busy on average (CPU seconds a second).
// - push URL EVENTS RECEIVER_PORT PG_PID RECEIVER_PID: EVENTS webhooks stored by a gateway
//   without workers, then pushed by one `worker` process to one route whose receiver answers 200
//   at once; from the worker's start to the last delivery recorded. Prints "PUSHDRAIN events=N
//   seconds=S cpu_worker=C cpu_pg=C cpu_receiver=C cpu_rest=C lat_p50_ms=X lat_p99_ms=X", the
//   latencies from each event's enqueue to its delivery.
// - pull URL EVENTS PULLERS MAX each|batch PG_PID: EVENTS webhooks stored, then worked through
//   the jobs API by PULLERS threads, each claiming MAX jobs at a time and completing them, one
//   request each or all in one. Prints "PULLDRAIN events=N completed=N seconds=S cpu_gateway=C
//   cpu_pg=C cpu_rest=C".
// - store URL EVENTS pushed|pulled RECEIVER_PORT: EVENTS webhooks stored by a gateway without
//   workers, for bench/backdoor.sh's ceilings: of source "pushed" (a delivery each, to a route
//   whose receiver is RECEIVER_PORT) or "pulled" (for pull workers). Prints nothing.
// - sustained URL RECEIVER_PORT STEP_SECONDS STEPS PG_PID: first the ingest-only rate (senders as
//   fast as the gateway answers, no workers); then, with the workers pushing to the receiver, steps
//   of STEP_SECONDS at a fixed webhook rate, at most STEPS of them: from half the ingest-only rate,
//   up by a fifth while the backlog stays flat (or down by a fifth until it does), then halving
//   the interval between the highest flat rate and the lowest steep one. Prints "INGESTONLY
//   webhooks_per_s=R" and per step "STEP rate=R sent_per_s=R delivered_per_s=R flat=0|1
//   growth_per_s=X lat_p50_ms=X lat_p99_ms=X lat_p999_ms=X cpu_gateway=C cpu_pg=C", growth_per_s
//   the backlog's trend over the step's last three quarters. Stops after a step whose events are
//   not all delivered within a minute of its end.
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <limits>
#include <numeric>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "e2e/fixtures.hpp"
#include "load.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using flare::bench::tree_ticks;
using flare::test::Gateway;
using flare::test::HttpClient;

const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));

// Senders: enough connections that the gateway's group commit fills, as under real traffic.
constexpr int kSenders = 32;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// EVENTS webhooks of `source`, each id once, from kSenders connections.
bool fill(std::uint16_t port, const std::string& source, int events) {
  std::atomic<bool> failed{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kSenders; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client(port);
      for (int i = c; i < events; i += kSenders) {
        if (!flare::bench::post(client, source, "evt_" + source + "_" + std::to_string(i), i)) {
          failed = true;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  return !failed;
}

std::int64_t number(pqxx::connection& db, const std::string& sql) {
  pqxx::nontransaction tx(db);
  return tx.exec(sql)[0][0].as<std::int64_t>();
}

// Whether any delivery has not ended, found through the two partial indexes of the waiting and
// the running ones: 0.9 µs of PostgreSQL's time a job over a drain of 200,000, where a count
// every poll took 57 of its 202 (note 53).
bool pending(pqxx::connection& db) {
  return number(db,
                "SELECT (EXISTS (SELECT FROM deliveries WHERE source = 'pushed' AND route = 'r' "
                "AND status IN ('queued', 'retrying')) OR EXISTS (SELECT FROM deliveries WHERE "
                "source = 'pushed' AND route = 'r' AND status = 'running'))::int") != 0;
}

// CPU shares over an interval: the busy ticks of some process trees, and of the whole machine.
class Cpu {
 public:
  explicit Cpu(std::vector<pid_t> roots) : roots_(std::move(roots)) { reset(); }
  void reset() {
    began_ = Clock::now();
    machine_ = flare::bench::machine_ticks();
    ticks_.clear();
    for (pid_t p : roots_) ticks_.push_back(tree_ticks(p));
  }
  // Cores busy for each root, then for the rest of the machine.
  std::vector<double> shares() const {
    double seconds = since(began_);
    std::vector<double> out;
    std::int64_t ours = 0;
    for (std::size_t i = 0; i < roots_.size(); ++i) {
      std::int64_t t = tree_ticks(roots_[i]) - ticks_[i];
      ours += t;
      out.push_back(static_cast<double>(t) / kTicks / seconds);
    }
    out.push_back(static_cast<double>(flare::bench::machine_ticks() - machine_ - ours) / kTicks /
                  seconds);
    return out;
  }

 private:
  std::vector<pid_t> roots_;
  Clock::time_point began_;
  std::int64_t machine_ = 0;
  std::vector<std::int64_t> ticks_;
};

// The deliveries of the jobs enqueued at or after $1 and before $2 (Unix seconds).
const std::string kEnqueuedBetween =
    " FROM deliveries d JOIN jobs j ON j.project_id = d.project_id AND j.id = d.job_id WHERE "
    "j.created_at >= to_timestamp($1) AND j.created_at < to_timestamp($2)";

// From enqueue to delivery, of the deliveries of jobs created at or after `from` (Unix seconds).
std::vector<double> latencies_ms(pqxx::connection& db, double from, double to) {
  pqxx::nontransaction tx(db);
  pqxx::row r = tx.exec_params1(
      "SELECT percentile_cont(ARRAY[0.5, 0.99, 0.999]) WITHIN GROUP (ORDER BY extract(epoch FROM "
      "d.completed_at - j.created_at) * 1000)::text" +
          kEnqueuedBetween + " AND d.status = 'succeeded'",
      from, to);
  std::vector<double> out;
  if (r[0].is_null()) return {0, 0, 0};
  std::string list = r[0].as<std::string>();  // {a,b,c}
  for (std::size_t at = 1; at < list.size();) {
    std::size_t end = list.find_first_of(",}", at);
    out.push_back(std::stod(list.substr(at, end - at)));
    at = end + 1;
  }
  return out;
}

// How fast the backlog of the events enqueued from `from` to `to` (Unix seconds) grew from
// `after` on, in events a second: the least-squares slope of how many were enqueued and not yet
// delivered, every 100 ms, as the database's times tell it afterwards. A slope, not the backlog
// at the end against the start, so that the events in flight at any one moment, as many as the
// wait holds at that rate, and the claims of up to 500 each worker holds, do not count as growth
// (note 55).
double growth_per_s(pqxx::connection& db, double from, double after, double to) {
  pqxx::nontransaction tx(db);
  pqxx::result r = tx.exec_params(
      "SELECT extract(epoch FROM j.created_at)::float8, extract(epoch FROM "
      "d.completed_at)::float8" +
          kEnqueuedBetween,
      from, to);
  std::vector<double> in, out;
  for (const auto& row : r) {
    in.push_back(row[0].as<double>());
    if (!row[1].is_null()) out.push_back(row[1].as<double>());
  }
  std::sort(in.begin(), in.end());
  std::sort(out.begin(), out.end());
  // The backlog at `after` + 0.1 s × k, for k = 0, 1, ...
  std::vector<double> backlog;
  for (int k = 0; after + 0.1 * k < to; ++k) {
    double t = after + 0.1 * k;
    backlog.push_back(
        static_cast<double>(std::upper_bound(in.begin(), in.end(), t) - in.begin()) -
        static_cast<double>(std::upper_bound(out.begin(), out.end(), t) - out.begin()));
  }
  if (backlog.size() < 2) return std::numeric_limits<double>::infinity();  // no trend to judge by
  double n = static_cast<double>(backlog.size());
  double mean_k = (n - 1) / 2;
  double mean_b = std::accumulate(backlog.begin(), backlog.end(), 0.0) / n;
  double covariance = 0, variance = 0;
  for (std::size_t k = 0; k < backlog.size(); ++k) {
    covariance += (static_cast<double>(k) - mean_k) * (backlog[k] - mean_b);
    variance += (static_cast<double>(k) - mean_k) * (static_cast<double>(k) - mean_k);
  }
  return covariance / variance / 0.1;  // events a sample, ten samples a second
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int push(const std::string& url, int events, std::uint16_t receiver, pid_t pg, pid_t nginx) {
  std::string config =
      flare::test::gateway_config(url) + flare::bench::stripe_source("pushed", receiver);
  {
    Gateway ingest(config, {"serve", "--no-workers"});
    if (!fill(ingest.port(), "pushed", events)) return 1;
  }
  pqxx::connection db(url);
  auto began = Clock::now();
  double began_unix = unix_now();
  Gateway worker(config, {"worker"});
  Cpu cpu({worker.pid(), pg, nginx});
  while (pending(db)) {
    if (since(began) > 900) return 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::vector<double> shares = cpu.shares();
  // The end as the database recorded it, not as the last poll saw it.
  double ended = static_cast<double>(
                     number(db,
                            "SELECT (extract(epoch FROM max(completed_at)) * 1000000)::bigint FROM "
                            "deliveries")) /
                 1e6;
  std::int64_t done = number(db, "SELECT count(*) FROM deliveries WHERE status = 'succeeded'");
  std::vector<double> lat = latencies_ms(db, 0, 1e12);
  std::printf(
      "PUSHDRAIN events=%d deliveries=%lld seconds=%.3f cpu_worker=%.2f cpu_pg=%.2f "
      "cpu_receiver=%.2f cpu_rest=%.2f lat_p50_ms=%.0f lat_p99_ms=%.0f\n",
      events, static_cast<long long>(done), ended - began_unix, shares[0], shares[1], shares[2],
      shares[3], lat[0], lat[1]);
  return done == events ? 0 : 1;
}

int pull(const std::string& url, int events, int pullers, int max, bool batch, pid_t pg) {
  std::string config = flare::test::gateway_config(url) + flare::bench::stripe_source("pulled");
  Gateway gateway(config, {"serve", "--no-workers"});
  if (!fill(gateway.port(), "pulled", events)) return 1;
  Cpu cpu({gateway.pid(), pg});
  auto began = Clock::now();
  std::atomic<std::int64_t> completed{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < pullers; ++p) {
    threads.emplace_back([&] {
      HttpClient client(gateway.port());
      const flare::test::HeaderList auth = {{"Authorization", "Bearer " + flare::test::kShopKey}};
      const std::string claim = R"({"max":)" + std::to_string(max) + R"(,"lease_seconds":60})";
      while (completed < events && !failed && since(began) < 900) {
        flare::test::Response r = client.request("POST", "/v1/jobs/claim", auth, claim);
        rapidjson::Document doc;
        doc.Parse(r.body.c_str());
        if (r.status != 200 || !doc.IsObject() || !doc.HasMember("jobs")) {
          failed = true;
          break;
        }
        std::string all;
        for (const auto& job : doc["jobs"].GetArray()) {
          std::string lease =
              std::string(R"("lease_token":")") + job["lease_token"].GetString() + "\"";
          if (batch) {
            all += (all.empty() ? R"({"id":")" : R"(,{"id":")") +
                   std::string(job["id"].GetString()) + "\"," + lease + "}";
            continue;
          }
          flare::test::Response c =
              client.request("POST", std::string("/v1/jobs/") + job["id"].GetString() + "/complete",
                             auth, "{" + lease + "}");
          if (c.status != 200) failed = true;
          ++completed;
        }
        if (!all.empty()) {
          flare::test::Response c =
              client.request("POST", "/v1/jobs/complete", auth, R"({"jobs":[)" + all + "]}");
          rapidjson::Document done;
          done.Parse(c.body.c_str());
          if (c.status != 200 || !done.IsObject()) {
            failed = true;
          } else {
            completed += done["completed"].GetInt();
          }
        }
        if (doc["jobs"].Empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  for (auto& t : threads) t.join();
  double seconds = since(began);
  std::vector<double> shares = cpu.shares();
  std::printf(
      "PULLDRAIN events=%d completed=%lld seconds=%.3f cpu_gateway=%.2f cpu_pg=%.2f "
      "cpu_rest=%.2f\n",
      events, static_cast<long long>(completed.load()), seconds, shares[0], shares[1], shares[2]);
  return failed || completed != events ? 1 : 0;
}

// Webhooks of source "pushed" at `rate` a second (0: as fast as answered) for `seconds`, from
// kSenders connections; ids from `next`. Returns those accepted.
std::int64_t send(std::uint16_t port, double rate, double seconds,
                  std::atomic<std::int64_t>& next) {
  std::atomic<std::int64_t> accepted{0};
  auto began = Clock::now();
  auto until =
      began + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      HttpClient client(port);
      // Each sender's requests evenly spaced, the senders' spread over one interval.
      auto interval = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(rate > 0 ? kSenders / rate : 0));
      auto at = began + interval * s / kSenders;
      while (at < until) {
        if (rate > 0) std::this_thread::sleep_until(at);
        if (Clock::now() >= until) break;
        std::int64_t n = next++;
        if (flare::bench::post(client, "pushed", "evt_s_" + std::to_string(n),
                               static_cast<std::size_t>(n))) {
          ++accepted;
        }
        at = rate > 0 ? at + interval : Clock::now();
      }
    });
  }
  for (auto& t : senders) t.join();
  return accepted;
}

int sustained(const std::string& url, std::uint16_t receiver, double step, int steps, pid_t pg) {
  std::string config =
      flare::test::gateway_config(url) + flare::bench::stripe_source("pushed", receiver);
  std::atomic<std::int64_t> next{0};
  pqxx::connection db(url);
  double ingest_only = 0;
  {
    Gateway ingest(config, {"serve", "--no-workers"});
    ingest_only = static_cast<double>(send(ingest.port(), 0, step, next)) / step;
  }
  std::printf("INGESTONLY webhooks_per_s=%.0f\n", ingest_only);
  std::fflush(stdout);
  pqxx::nontransaction(db).exec("TRUNCATE jobs, deliveries, attempts");
  Gateway gateway(config);
  // The highest flat rate and the lowest rate found not flat so far (0: none yet).
  double flat_at = 0, steep_at = 0;
  double rate = ingest_only / 2;
  for (int k = 0; k < steps; ++k) {
    std::int64_t done_before =
        number(db, "SELECT count(*) FROM deliveries WHERE status = 'succeeded'");
    double from = unix_now();
    Cpu cpu({gateway.pid(), pg});
    std::int64_t accepted = send(gateway.port(), rate, step, next);
    std::vector<double> shares = cpu.shares();
    double to = unix_now();
    std::int64_t delivered =
        number(db, "SELECT count(*) FROM deliveries WHERE status = 'succeeded'") - done_before;
    double sent = static_cast<double>(accepted) / step;
    // The step's events all delivered, for their latencies, and the next step begun empty.
    for (auto waited = Clock::now(); pending(db) && since(waited) < 60;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    bool drained = !pending(db);
    std::vector<double> lat = latencies_ms(db, from, to);
    // Flat: the senders kept the rate, the step's events were all delivered within a minute, and
    // the backlog grew by no more than a fiftieth of the rate sent, judged after the first
    // quarter, when the pipeline fills from empty.
    double growth = growth_per_s(db, from, from + 0.25 * step, to);
    bool flat = drained && sent >= 0.97 * rate && growth <= 0.02 * sent;
    std::printf(
        "STEP rate=%.0f sent_per_s=%.0f delivered_per_s=%.0f flat=%d growth_per_s=%.1f "
        "lat_p50_ms=%.1f lat_p99_ms=%.1f lat_p999_ms=%.1f cpu_gateway=%.2f cpu_pg=%.2f\n",
        rate, sent, static_cast<double>(delivered) / step, flat ? 1 : 0, growth, lat[0], lat[1],
        lat[2], shares[0], shares[1]);
    std::fflush(stdout);
    if (!drained) break;  // a minute after the step: no next step would begin empty
    (flat ? flat_at : steep_at) = rate;
    if (flat_at > 0 && steep_at > 0) {
      if (steep_at / flat_at < 1.05) break;  // found within a twentieth
      rate = (flat_at + steep_at) / 2;
    } else {
      rate *= flat ? 1.2 : 0.8;
    }
  }
  return 0;
}

}  // namespace

int store(const std::string& url, int events, const std::string& source, std::uint16_t receiver) {
  Gateway ingest(flare::test::gateway_config(url) +
                     flare::bench::stripe_source(source, source == "pushed" ? receiver : 0),
                 {"serve", "--no-workers"});
  return fill(ingest.port(), source, events) ? 0 : 1;
}

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 5 && a[0] == "store" && (a[3] == "pushed" || a[3] == "pulled")) {
    return store(a[1], std::stoi(a[2]), a[3], static_cast<std::uint16_t>(std::stoi(a[4])));
  }
  if (a.size() == 6 && a[0] == "push") {
    return push(a[1], std::stoi(a[2]), static_cast<std::uint16_t>(std::stoi(a[3])), std::stoi(a[4]),
                std::stoi(a[5]));
  }
  if (a.size() == 7 && a[0] == "pull" && (a[5] == "each" || a[5] == "batch")) {
    return pull(a[1], std::stoi(a[2]), std::stoi(a[3]), std::stoi(a[4]), a[5] == "batch",
                std::stoi(a[6]));
  }
  if (a.size() == 6 && a[0] == "sustained") {
    return sustained(a[1], static_cast<std::uint16_t>(std::stoi(a[2])), std::stod(a[3]),
                     std::stoi(a[4]), std::stoi(a[5]));
  }
  std::fprintf(stderr,
               "usage: backdoor push URL EVENTS RECEIVER_PORT PG_PID RECEIVER_PID\n"
               "       backdoor pull URL EVENTS PULLERS MAX each|batch PG_PID\n"
               "       backdoor store URL EVENTS pushed|pulled RECEIVER_PORT\n"
               "       backdoor sustained URL RECEIVER_PORT STEP_SECONDS STEPS PG_PID\n");
  return 2;
}
