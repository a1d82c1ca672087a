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

}  // namespace
}  // namespace flare::test
