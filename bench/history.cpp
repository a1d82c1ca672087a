// The stored-history and held-transaction parts of `bench/run --history`, against a database
// the script prepared (empty, or filled with finished jobs):
// - drain URL EVENTS: EVENTS webhooks of 2-4 KB stored by a gateway without workers (8 clients),
//   then pushed by a `worker` process to one route whose receiver answers 200 at once; from the
//   first delivery to the last. Prints "DRAIN events=N deliveries=D seconds=S".
// - held URL BEFORE HELD AFTER RATE: a gateway receives RATE webhooks a second (8 clients), half
//   pushed to a route, half pulled by four workers through the jobs API (claim 10, complete each);
//   for HELD seconds after the first BEFORE a REPEATABLE READ transaction stays open on another
//   connection, then AFTER seconds more. Every 10 s prints "HELD phase=P t=S webhooks=N
//   deliveries=N claimed=N claim_p50_ms=X claim_p99_ms=X pull_queued=N push_queued=N
//   dead_tuples=N oldest_tx_s=X", and at the end "HELDSUM phase=P ..." per phase.
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "e2e/fixtures.hpp"
#include "load.hpp"
#include "support/receiver.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using flare::test::HttpClient;

flare::test::Receiver::Handler counting(std::atomic<std::int64_t>& count) {
  return [&count](flare::test::Receiver&, const flare::test::Received&, std::size_t) {
    count.fetch_add(1);
    return flare::test::Answer{};
  };
}

int drain(const std::string& url, int events) {
  std::atomic<std::int64_t> delivered{0};
  flare::test::Receiver receiver(counting(delivered));
  std::string config =
      flare::test::gateway_config(url) + flare::bench::stripe_source("fanned", receiver.port());
  {
    flare::test::Gateway ingest(config, {"serve", "--no-workers"});
    std::vector<std::thread> clients;
    std::atomic<bool> failed{false};
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&, c] {
        HttpClient client(ingest.port());
        for (int i = c; i < events; i += 8) {
          if (!flare::bench::post(client, "fanned", "evt_drain_" + std::to_string(i), i))
            failed = true;
        }
      });
    }
    for (auto& t : clients) t.join();
    if (failed) return 1;
  }
  flare::test::Gateway worker(config, {"worker"});
  if (!receiver.wait_for(static_cast<std::size_t>(events), std::chrono::seconds(600))) return 1;
  std::vector<flare::test::Received> got = receiver.requests();
  auto [first, last] = std::minmax_element(
      got.begin(), got.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
  std::printf("DRAIN events=%d deliveries=%zu seconds=%.3f\n", events, got.size(),
              std::chrono::duration<double>(last->at - first->at).count());
  return 0;
}

// What the threads count, read and reset by the sampler.
struct Window {
  std::mutex mutex;
  std::int64_t webhooks = 0;
  std::int64_t claimed = 0;
  std::vector<double> claim_ms;
};

int held(const std::string& url, int before, int held_for, int after, int rate) {
  std::atomic<std::int64_t> delivered{0};
  flare::test::Receiver receiver(counting(delivered));
  std::string config = flare::test::gateway_config(url) +
                       flare::bench::stripe_source("pushed", receiver.port()) +
                       flare::bench::stripe_source("pulled");
  flare::test::Gateway gateway(config);
  std::atomic<bool> stop{false};
  Window window;

  // Eight senders, each an eighth of the rate: one waits for each commit in turn.
  constexpr int kSenders = 8;
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      HttpClient client(gateway.port());
      auto next = Clock::now();
      for (std::size_t n = static_cast<std::size_t>(s); !stop; n += kSenders) {
        std::this_thread::sleep_until(next);
        next += std::chrono::microseconds(1'000'000 * kSenders / rate);
        if (flare::bench::post(client, n % 2 ? "pushed" : "pulled", "evt_held_" + std::to_string(n),
                               n)) {
          std::lock_guard lock(window.mutex);
          ++window.webhooks;
        }
      }
    });
  }
  // Four pullers, as a customer runs several workers: one alone, claiming 10 and completing each
  // in turn, has little more than the pulled half of the rate to give, and no backlog would drain.
  constexpr int kPullers = 4;
  std::vector<std::thread> pullers;
  for (int p = 0; p < kPullers; ++p) {
    pullers.emplace_back([&] {
      HttpClient client(gateway.port());
      const flare::test::HeaderList auth = {{"Authorization", "Bearer " + flare::test::kShopKey}};
      while (!stop) {
        auto began = Clock::now();
        flare::test::Response r =
            client.request("POST", "/v1/jobs/claim", auth, R"({"max":10,"lease_seconds":60})");
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - began).count();
        rapidjson::Document doc;
        doc.Parse(r.body.c_str());
        if (r.status != 200 || !doc.IsObject() || !doc.HasMember("jobs")) continue;
        const auto& jobs = doc["jobs"].GetArray();
        for (const auto& job : jobs) {
          client.request(
              "POST", std::string("/v1/jobs/") + job["id"].GetString() + "/complete", auth,
              std::string(R"({"lease_token":")") + job["lease_token"].GetString() + "\"}");
        }
        {
          std::lock_guard lock(window.mutex);
          window.claimed += jobs.Size();
          window.claim_ms.push_back(ms);
        }
        if (jobs.Empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }

  struct Phase {
    const char* name;
    int seconds;
  };
  const Phase phases[] = {{"before", before}, {"held", held_for}, {"after", after}};
  std::unique_ptr<pqxx::connection> holder;
  std::unique_ptr<pqxx::work> snapshot;
  int t = 0;
  std::int64_t last_delivered = 0;
  for (const Phase& phase : phases) {
    if (std::string(phase.name) == "held") {
      holder = std::make_unique<pqxx::connection>(url);
      snapshot = std::make_unique<pqxx::work>(*holder);
      snapshot->exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
      snapshot->exec("SELECT count(*) FROM routes");  // takes the snapshot
    } else if (snapshot) {
      snapshot->abort();
      snapshot.reset();
      holder.reset();
    }
    std::int64_t sum_webhooks = 0, sum_deliveries = 0, sum_claimed = 0;
    std::vector<double> all_ms;
    for (int s = 0; s < phase.seconds; s += 10) {
      int step = std::min(10, phase.seconds - s);
      std::this_thread::sleep_for(std::chrono::seconds(step));
      t += step;
      Window w;
      {
        std::lock_guard lock(window.mutex);
        std::swap(w.webhooks, window.webhooks);
        std::swap(w.claimed, window.claimed);
        std::swap(w.claim_ms, window.claim_ms);
      }
      std::int64_t now_delivered = delivered.load();
      std::string m = flare::test::request_once(gateway.port(), "GET", "/metrics").body;
      std::printf(
          "HELD phase=%s t=%d webhooks=%lld deliveries=%lld claimed=%lld claim_p50_ms=%.2f "
          "claim_p99_ms=%.2f pull_queued=%.0f push_queued=%.0f dead_tuples=%.0f "
          "oldest_tx_s=%.0f\n",
          phase.name, t, static_cast<long long>(w.webhooks),
          static_cast<long long>(now_delivered - last_delivered), static_cast<long long>(w.claimed),
          flare::bench::percentile(w.claim_ms, 0.5), flare::bench::percentile(w.claim_ms, 0.99),
          flare::test::sample(m, R"(flare_queue_depth{kind="pull",status="queued"})"),
          flare::test::sample(m, R"(flare_queue_depth{kind="push",status="queued"})"),
          flare::test::sample(m, R"(flare_table_dead_tuples{table="jobs"})"),
          flare::test::sample(m, "flare_oldest_transaction_seconds"));
      std::fflush(stdout);
      sum_webhooks += w.webhooks;
      sum_deliveries += now_delivered - last_delivered;
      sum_claimed += w.claimed;
      all_ms.insert(all_ms.end(), w.claim_ms.begin(), w.claim_ms.end());
      last_delivered = now_delivered;
    }
    std::printf(
        "HELDSUM phase=%s seconds=%d webhooks_per_s=%.0f deliveries_per_s=%.0f claimed_per_s=%.0f "
        "claim_p50_ms=%.2f claim_p99_ms=%.2f\n",
        phase.name, phase.seconds, static_cast<double>(sum_webhooks) / phase.seconds,
        static_cast<double>(sum_deliveries) / phase.seconds,
        static_cast<double>(sum_claimed) / phase.seconds, flare::bench::percentile(all_ms, 0.5),
        flare::bench::percentile(all_ms, 0.99));
    std::fflush(stdout);
  }
  stop = true;
  for (auto& s : senders) s.join();
  for (auto& p : pullers) p.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 3 && args[0] == "drain") return drain(args[1], std::stoi(args[2]));
  if (args.size() == 6 && args[0] == "held") {
    return held(args[1], std::stoi(args[2]), std::stoi(args[3]), std::stoi(args[4]),
                std::stoi(args[5]));
  }
  std::fprintf(stderr, "usage: history drain URL EVENTS | held URL BEFORE HELD AFTER RATE\n");
  return 2;
}
