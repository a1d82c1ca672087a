// How fast verified webhooks become committed jobs, against a ceiling and a baseline measured in
// the same run on the same machine:
//   ceiling  - GET /healthz through the same server and clients: the HTTP path alone;
//   baseline - one enqueue per transaction on one connection: the database without group commit.
// Prints medians over several rounds and the ratios between them.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "e2e/fixtures.hpp"
#include "jobs/store.hpp"
#include "support/database.hpp"
#include "support/receiver.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using flare::test::HttpClient;

struct Round {
  double per_second;
  double p50_us;
  double p99_us;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

// `clients` keep-alive connections each send `per_client` requests made by `make(client, i)`.
template <class Make>
Round load(std::uint16_t port, int clients, int per_client, Make make) {
  std::vector<std::vector<double>> latencies(clients);
  std::barrier start(clients + 1);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client(port);
      start.arrive_and_wait();
      for (int i = 0; i < per_client; ++i) {
        auto [method, target, headers, body] = make(c, i);
        auto t0 = Clock::now();
        int status = client.request(method, target, headers, body).status;
        latencies[c].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        if (status != 200 && status != 202) ++failures;
      }
    });
  }
  start.arrive_and_wait();
  auto t0 = Clock::now();
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (failures > 0) std::fprintf(stderr, "warning: %d requests failed\n", failures.load());
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  return {static_cast<double>(all.size()) / seconds, percentile(all, 0.5), percentile(all, 0.99)};
}

flare::jobs::NewJob job(const std::string& key) {
  flare::jobs::NewJob j;
  j.project_id = "shop";
  j.idempotency_key = key;
  j.type = "stripe.invoice.paid";
  j.payload = flare::test::stripe_body(key);
  j.content_type = "application/json";
  j.source = "stripe";
  j.event_id = key;
  return j;
}

// With idle workers, how long after the 202 the destination sees the first attempt: one
// delivery at a time, so every one starts from LISTEN/NOTIFY, not from a poll.
std::vector<double> delivery_latencies(flare::test::TestDatabase& db, int deliveries) {
  flare::test::Receiver receiver([](flare::test::Receiver&, const flare::test::Received&,
                                    std::size_t) { return flare::test::Answer{}; });
  flare::test::Gateway gateway(flare::test::delivery_config(db.url(), receiver.port()));
  HttpClient client(gateway.port());
  std::vector<double> out;
  for (int i = 0; i < deliveries; ++i) {
    std::string body = flare::test::stripe_body("evt_push_bench_" + std::to_string(i));
    client.request("POST", "/webhooks/pushed", flare::test::stripe_headers(body), body);
    auto answered = Clock::now();
    if (!receiver.wait_for(static_cast<std::size_t>(i + 1), std::chrono::seconds(10))) break;
    out.push_back(
        std::chrono::duration<double, std::micro>(receiver.requests().back().at - answered)
            .count());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int clients = argc > 1 ? std::stoi(argv[1]) : 32;
  int per_client = argc > 2 ? std::stoi(argv[2]) : 100;
  constexpr int kRounds = 5;
  flare::test::TestDatabase db;
  flare::test::Gateway gateway(flare::test::gateway_config(db.url()));
  std::uint16_t port = gateway.port();
  int requests = clients * per_client;

  std::vector<double> http, webhooks, commits, p50, p99, batch;
  for (int round = 0; round < kRounds; ++round) {
    http.push_back(
        load(port, clients, per_client, [](int, int) {
          return std::tuple<std::string, std::string, flare::test::HeaderList, std::string>{
              "GET", "/healthz", {}, ""};
        }).per_second);

    std::string before = db.scalar("SELECT count(*) FROM jobs");
    Round w = load(port, clients, per_client, [round](int c, int i) {
      std::string body = flare::test::stripe_body("evt_bench_" + std::to_string(round) + "_" +
                                                  std::to_string(c) + "_" + std::to_string(i));
      return std::tuple<std::string, std::string, flare::test::HeaderList, std::string>{
          "POST", "/webhooks/stripe", flare::test::stripe_headers(body), body};
    });
    webhooks.push_back(w.per_second);
    p50.push_back(w.p50_us);
    p99.push_back(w.p99_us);
    // Rows written in one transaction share its xmin: jobs per commit, read off the table.
    std::string tx = db.scalar(
        "SELECT count(DISTINCT xmin::text) FROM jobs WHERE event_id LIKE "
        "'evt_bench_" +
        std::to_string(round) + "_%'");
    batch.push_back(static_cast<double>(requests) / std::stod(tx));

    flare::jobs::Store store(db.url());
    auto t0 = Clock::now();
    for (int i = 0; i < requests / 4; ++i) {
      store.enqueue({job("direct_" + std::to_string(round) + "_" + std::to_string(i))});
    }
    commits.push_back(requests / 4 / std::chrono::duration<double>(Clock::now() - t0).count());
  }

  std::printf("ingest benchmark: %d clients x %d requests, %d rounds, medians\n", clients,
              per_client, kRounds);
  std::printf("  ceiling   GET /healthz                    %10.0f req/s\n", median(http));
  std::printf("  baseline  one job per transaction         %10.0f jobs/s\n", median(commits));
  std::printf("  webhooks  verified, committed            %10.0f req/s  p50 %.0f us  p99 %.0f us\n",
              median(webhooks), median(p50), median(p99));
  std::printf("  jobs per commit                           %10.1f\n", median(batch));
  std::printf("  ratio webhooks / baseline                 %10.2f\n",
              median(webhooks) / median(commits));
  std::printf("  ratio webhooks / ceiling                  %10.2f\n",
              median(webhooks) / median(http));

  // The receiver may see the attempt before the client has read its 202: such a latency is < 0.
  std::vector<double> push = delivery_latencies(db, 200);
  std::printf("push: first attempt after the 202, %zu deliveries one at a time, idle workers\n",
              push.size());
  std::printf("  latency                                   p50 %.0f us  p99 %.0f us\n",
              percentile(push, 0.5), percentile(push, 0.99));
  return 0;
}
