// Push delivery, for bench/run:
// - latency: with idle workers, the time from the client reading its 202 to the destination
//   receiving the first attempt; one delivery at a time, so each starts from LISTEN/NOTIFY.
//   Prints "PUSH deliveries=N p50=US p99=US".
// - fan-out: N stored events pushed by one `worker` process (8 workers) to 1 route, then to 3
//   routes that each take every event, every receiver answering 200 at once; from the first
//   request any receiver got to the last. Prints "FANOUT routes=K events=N deliveries=D
//   seconds=S".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "e2e/fixtures.hpp"
#include "load.hpp"
#include "support/database.hpp"
#include "support/receiver.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using flare::test::HttpClient;

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

// `events` webhooks stored by a gateway without workers, then pushed by a worker process to
// `routes` routes; false when not every delivery arrived within a minute.
bool fan_out(int routes, int events) {
  flare::test::TestDatabase db;
  std::vector<std::unique_ptr<flare::test::Receiver>> receivers;
  std::string config = flare::test::gateway_config(db.url()) +
                       "  - name: fanned\n    provider: stripe\n    project: shop\n"
                       "    secrets: [\"" +
                       flare::test::kStripeSecret + "\"]\n    routes:\n";
  for (int r = 0; r < routes; ++r) {
    receivers.push_back(std::make_unique<flare::test::Receiver>(
        [](flare::test::Receiver&, const flare::test::Received&, std::size_t) {
          return flare::test::Answer{};
        }));
    config += "      - { name: r" + std::to_string(r) +
              ", url: \"http://127.0.0.1:" + std::to_string(receivers.back()->port()) +
              "/\", secret: \"" + flare::test::kDestinationSecret + "\", timeout_ms: 10000 }\n";
  }
  {
    flare::test::Gateway ingest(config, {"serve", "--no-workers"});
    HttpClient client(ingest.port());
    for (int i = 0; i < events; ++i) {
      std::string body = flare::test::stripe_body("evt_fanout_" + std::to_string(i));
      if (client.request("POST", "/webhooks/fanned", flare::test::stripe_headers(body), body)
              .status != 202) {
        return false;
      }
    }
  }
  flare::test::Gateway worker(config, {"worker"});
  for (auto& r : receivers) {
    if (!r->wait_for(static_cast<std::size_t>(events), std::chrono::seconds(60))) return false;
  }
  Clock::time_point first = Clock::time_point::max(), last = Clock::time_point::min();
  std::size_t deliveries = 0;
  for (auto& r : receivers) {
    for (const flare::test::Received& got : r->requests()) {
      first = std::min(first, got.at);
      last = std::max(last, got.at);
      ++deliveries;
    }
  }
  std::printf("FANOUT routes=%d events=%d deliveries=%zu seconds=%.3f\n", routes, events,
              deliveries, std::chrono::duration<double>(last - first).count());
  return true;
}

}  // namespace

// push [LATENCY_DELIVERIES [FANOUT_EVENTS]]
int main(int argc, char** argv) {
  int deliveries = argc > 1 ? std::stoi(argv[1]) : 200;
  int events = argc > 2 ? std::stoi(argv[2]) : 2000;
  flare::test::TestDatabase db;
  // The receiver may see the attempt before the client has read its 202: such a latency is < 0.
  std::vector<double> push = delivery_latencies(db, deliveries);
  if (push.empty()) return 1;
  std::printf("PUSH deliveries=%zu p50=%.0f p99=%.0f\n", push.size(),
              flare::bench::percentile(push, 0.5), flare::bench::percentile(push, 0.99));
  for (int routes : {1, 3}) {
    if (!fan_out(routes, events)) return 1;
  }
  return 0;
}
