// Push latency: with idle workers, the time from the client reading its 202 to the destination
// receiving the first attempt; one delivery at a time, so each starts from LISTEN/NOTIFY.
// Prints "PUSH deliveries=N p50=US p99=US" for bench/run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"
#include "support/receiver.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using flare::test::HttpClient;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

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
  int deliveries = argc > 1 ? std::stoi(argv[1]) : 200;
  flare::test::TestDatabase db;
  // The receiver may see the attempt before the client has read its 202: such a latency is < 0.
  std::vector<double> push = delivery_latencies(db, deliveries);
  if (push.empty()) return 1;
  std::printf("PUSH deliveries=%zu p50=%.0f p99=%.0f\n", push.size(), percentile(push, 0.5),
              percentile(push, 0.99));
  return 0;
}
