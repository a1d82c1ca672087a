// GET /metrics through the real binary: valid by promtool, and counting known traffic.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "e2e/fixtures.hpp"
#include "support/receiver.hpp"

namespace flare::test {
namespace {

std::string scrape(const Gateway& gateway) {
  Response r = request_once(gateway.port(), "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return r.body;
}

// promtool's verdict on `metrics`: its exit status and what it printed.
std::pair<int, std::string> promtool(const std::string& metrics) {
  TempFile input(metrics, ".prom");
  TempFile output("", ".txt");
  std::string command =
      "promtool check metrics < " + input.path() + " > " + output.path() + " 2>&1";
  int status = std::system(command.c_str());
  std::ifstream in(output.path());
  std::stringstream text;
  text << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

TEST(Metrics, ValidAndCountingKnownTraffic) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{}; });
  Gateway gateway(delivery_config(db.url(), receiver.port()));
  auto post = [&](const std::string& source, const HeaderList& headers, const std::string& body) {
    return request_once(gateway.port(), "POST", "/webhooks/" + source, headers, body).status;
  };
  std::string a = stripe_body("evt_metrics_a"), b = stripe_body("evt_metrics_b");
  ASSERT_EQ(post("stripe", stripe_headers(a), a), 202);
  ASSERT_EQ(post("stripe", stripe_headers(b), b), 202);
  ASSERT_EQ(post("stripe", stripe_headers(a), a), 200);
  ASSERT_EQ(post("stripe", stripe_headers(a, "whsec_guessed"), a), 401);
  ASSERT_EQ(post("nosuch", stripe_headers(a), a), 404);
  std::string pushed = stripe_body("evt_metrics_push");
  ASSERT_EQ(post("pushed", stripe_headers(pushed), pushed), 202);
  ASSERT_TRUE(receiver.wait_for(1, std::chrono::seconds(10)));
  ASSERT_TRUE(gateway.wait_for_output("outcome=succeeded", std::chrono::seconds(10)));

  // The job counts are read on the database pool at most every 5 seconds; the first scrape
  // waits for them.
  std::string m = scrape(gateway);
  auto [status, verdict] = promtool(m);
  EXPECT_EQ(status, 0) << verdict << "\n" << m;

  EXPECT_EQ(sample(m, R"(flare_webhooks_total{source="stripe",outcome="accepted"})"), 2);
  EXPECT_EQ(sample(m, R"(flare_webhooks_total{source="stripe",outcome="duplicate"})"), 1);
  EXPECT_EQ(sample(m, R"(flare_webhooks_total{source="stripe",outcome="invalid_signature"})"), 1);
  EXPECT_EQ(sample(m, R"(flare_webhooks_total{source="",outcome="unknown_source"})"), 1);
  EXPECT_EQ(sample(m, R"(flare_webhooks_total{source="pushed",outcome="accepted"})"), 1);
  EXPECT_EQ(
      sample(
          m,
          R"(flare_delivery_attempts_total{source="pushed",route="default",outcome="succeeded"})"),
      1);
  EXPECT_EQ(
      sample(m,
             R"(flare_delivery_attempt_duration_seconds_count{source="pushed",route="default"})"),
      1);
  EXPECT_EQ(sample(m, R"(flare_route_deliveries_waiting{source="pushed",route="default"})"), 0);
  EXPECT_EQ(sample(m, R"(flare_route_attempts_in_flight{source="pushed",route="default"})"), 0);
  EXPECT_EQ(sample(m, R"(flare_route_state{source="pushed",route="default",state="closed"})"), 1);
  EXPECT_EQ(sample(m, R"(flare_route_state{source="pushed",route="default",state="open"})"), 0);
  // Three jobs stored: two stripe ones waiting for a pull worker, one delivered.
  EXPECT_EQ(sample(m, R"(flare_queue_depth{kind="pull",status="queued"})"), 2);
  EXPECT_EQ(sample(m, R"(flare_queue_depth{kind="pull",status="running"})"), 0);
  EXPECT_EQ(sample(m, R"(flare_queue_depth{kind="push",status="queued"})"), 0);
  EXPECT_EQ(sample(m, R"(flare_queue_depth{kind="push",status="running"})"), 0);
  EXPECT_GE(sample(m, R"(flare_queue_oldest_due_seconds{kind="pull"})"), 0);
  EXPECT_EQ(sample(m, R"(flare_queue_oldest_due_seconds{kind="push"})"), 0);
  EXPECT_EQ(sample(m, "flare_dead_jobs"), 0);
  EXPECT_GE(sample(m, R"(flare_table_dead_tuples{table="jobs"})"), 0);
  EXPECT_GE(sample(m, "flare_oldest_transaction_seconds"), 0);
  EXPECT_EQ(sample(m, R"(flare_pruned_total{what="payloads"})"), 0);
  // Four enqueues reached the committer (the duplicate included), in at most four batches.
  double batches = sample(m, "flare_enqueue_batch_size_count");
  EXPECT_GE(batches, 1);
  EXPECT_LE(batches, 4);
  EXPECT_EQ(sample(m, "flare_enqueue_batch_size_sum"), 4);
  // Each of those batches' commits timed, none of them instantly.
  EXPECT_EQ(sample(m, "flare_enqueue_commit_duration_seconds_count"), batches);
  EXPECT_GT(sample(m, "flare_enqueue_commit_duration_seconds_sum"), 0);
  // Every request so far, the forged and the unknown ones included; not this scrape.
  EXPECT_EQ(sample(m, "flare_http_request_duration_seconds_count"), 6);
  EXPECT_EQ(sample(m, R"(flare_http_request_duration_seconds_bucket{le="+Inf"})"), 6);
  // Bounds are written as short as they read back: what a query's le="0.005" matches.
  double fast = sample(m, R"(flare_http_request_duration_seconds_bucket{le="0.005"})");
  EXPECT_GE(fast, 0);
  EXPECT_LE(fast, 6);
  EXPECT_GE(sample(m, R"(flare_enqueue_commit_duration_seconds_bucket{le="0.0005"})"), 0);
  EXPECT_EQ(sample(m, "flare_db_errors_total"), 0);

  EXPECT_EQ(request_once(gateway.port(), "POST", "/metrics").status, 405);
  // The next scrape, within 5 seconds, reuses the counts: the scrape itself is now counted.
  std::string again = scrape(gateway);
  EXPECT_EQ(sample(again, "flare_http_request_duration_seconds_count"), 8);
  EXPECT_EQ(sample(again, R"(flare_queue_depth{kind="pull",status="queued"})"), 2);
}

}  // namespace
}  // namespace flare::test
