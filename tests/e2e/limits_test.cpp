// Connection-level limits: how many connections, how long a silent one may stay.
#include <gtest/gtest.h>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"

namespace flare::test {
namespace {

TEST(Limits, ConnectionsBeyondTheLimitAreClosedOthersKeepWorking) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url(), "  max_connections: 2\n"));
  HttpClient first(gateway.port());
  HttpClient second(gateway.port());
  // A request on each: both are accepted and counted before the third arrives.
  ASSERT_EQ(first.request("GET", "/healthz").status, 200);
  ASSERT_EQ(second.request("GET", "/healthz").status, 200);
  RawConnection third(gateway.port());
  EXPECT_TRUE(third.closed_within(5000));
  EXPECT_EQ(first.request("GET", "/healthz").status, 200);
}

TEST(Limits, IdleConnectionIsClosedAfterTheIdleTimeout) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url(), "  idle_timeout_ms: 200\n"));
  RawConnection silent(gateway.port());
  EXPECT_TRUE(silent.closed_within(5000));
  RawConnection slow(gateway.port());
  slow.send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n");  // and never the rest
  EXPECT_TRUE(slow.closed_within(5000));
}

// A connection closed on a timer leaves a trace: counted by what was late, and logged (at most
// a line every 10 s) when a sender stalled, not when a kept-alive connection simply ended.
TEST(Limits, TimeoutsAreCountedByReasonAndLogged) {
  TestDatabase db;
  std::string config = gateway_config(db.url(), "  idle_timeout_ms: 200\n");
  config.replace(config.find("read_timeout_ms: 5000"), 21, "read_timeout_ms: 300");
  Gateway gateway(config);
  RawConnection idle(gateway.port());
  RawConnection stalled_header(gateway.port());
  stalled_header.send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n");
  RawConnection stalled_body(gateway.port());
  stalled_body.send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
  EXPECT_TRUE(idle.closed_within(5000));
  EXPECT_TRUE(stalled_header.closed_within(5000));
  EXPECT_TRUE(stalled_body.closed_within(5000));
  std::string metrics = request_once(gateway.port(), "GET", "/metrics").body;
  EXPECT_EQ(sample(metrics, R"(flare_timeouts_total{reason="idle"})"), 1) << metrics;
  EXPECT_EQ(sample(metrics, R"(flare_timeouts_total{reason="header"})"), 1) << metrics;
  EXPECT_EQ(sample(metrics, R"(flare_timeouts_total{reason="body"})"), 1) << metrics;
  EXPECT_EQ(sample(metrics, R"(flare_timeouts_total{reason="write"})"), 0) << metrics;
  // The first stalled sender is logged; the second within 10 s only counted, and numbered in
  // the next line.
  EXPECT_TRUE(gateway.wait_for_output("timeout reason=", std::chrono::seconds(5)));
  std::string out = gateway.output();
  EXPECT_NE(out.find("client=127.0.0.1 unlogged_before=0"), std::string::npos) << out;
  EXPECT_EQ(out.find("timeout reason=idle"), std::string::npos) << out;
  EXPECT_EQ(out.find("timeout reason=", out.find("timeout reason=") + 1), std::string::npos) << out;
}

}  // namespace
}  // namespace flare::test
