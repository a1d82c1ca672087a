// PostgreSQL goes away under a running gateway and comes back: 503 with Retry-After meanwhile,
// 202 again afterwards, no restart.
#include <gtest/gtest.h>

#include <sstream>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"
#include "support/env.hpp"

namespace flare::test {
namespace {

TEST(Outage, UnavailableWhileDownAndRecoversWithoutRestart) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url()));
  std::string before = stripe_body("evt_before_outage");
  ASSERT_EQ(request_once(gateway.port(), "POST", "/webhooks/stripe", stripe_headers(before), before)
                .status,
            202);

  std::string body = stripe_body("evt_during_outage");
  {
    PostgresDown outage("stop");
    Response r =
        request_once(gateway.port(), "POST", "/webhooks/stripe", stripe_headers(body), body);
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.json("code"), "unavailable");
    // The event may have been stored before the connection was lost: retrying is what is safe.
    EXPECT_NE(r.json("message").find("may or may not"), std::string::npos) << r.body;
    EXPECT_EQ(r.header("retry-after"), "5");
    EXPECT_EQ(r.header("content-type"), "application/json");
    Response ready = request_once(gateway.port(), "GET", "/readyz");
    EXPECT_EQ(ready.status, 503);
    EXPECT_EQ(ready.json("code"), "unavailable");
    EXPECT_EQ(request_once(gateway.port(), "GET", "/healthz").status, 200);
    HeaderList api_key{{"Authorization", "Bearer " + kShopKey}};
    Response listed = request_once(gateway.port(), "GET", "/v1/jobs", api_key);
    EXPECT_EQ(listed.status, 503);
    EXPECT_EQ(listed.header("retry-after"), "5");
    Response created =
        request_once(gateway.port(), "POST", "/v1/jobs", api_key, R"({"type":"DuringOutage"})");
    EXPECT_EQ(created.status, 503);
    outage.end();
  }

  // The provider's retry of the refused delivery is stored now, once.
  Response retried =
      request_once(gateway.port(), "POST", "/webhooks/stripe", stripe_headers(body), body);
  EXPECT_EQ(retried.status, 202) << retried.body;
  EXPECT_EQ(request_once(gateway.port(), "GET", "/readyz").status, 200);
  EXPECT_EQ(
      request_once(gateway.port(), "POST", "/webhooks/stripe", stripe_headers(body), body).status,
      200);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs"), "2");
  EXPECT_EQ(gateway.terminate(), 0);
}

// While PostgreSQL is down, each group of connections tries it once per pause, not once per
// request: every request fails at once, the log says so once per group that saw it, and each
// of its lines is one line (libpq's messages hold newlines and tabs).
TEST(Outage, DownDatabaseIsTriedOncePerPauseAndLoggedOnce) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url()));
  auto db_errors = [&] {
    return sample(request_once(gateway.port(), "GET", "/metrics").body, "flare_db_errors_total");
  };
  double errors_before = db_errors();
  HeaderList api_key{{"Authorization", "Bearer " + kShopKey}};
  std::string body = stripe_body("evt_storm");
  {
    PostgresDown outage("stop");
    HttpClient client(gateway.port());
    int unavailable = 0;
    for (int i = 0; i < 200; ++i) {
      unavailable +=
          client.request("POST", "/webhooks/stripe", stripe_headers(body), body).status == 503;
      unavailable += client.request("GET", "/v1/jobs", api_key).status == 503;
    }
    EXPECT_EQ(unavailable, 400);
    // 400 requests, a few contacts: the committer's once per pause (the API's requests are
    // answered from its readiness, without the pool; the scrapes' job counts try the pool's).
    EXPECT_LE(db_errors() - errors_before, 20);
    outage.end();
  }
  // The committer is back once it says so (its next try comes within the pause).
  ASSERT_TRUE(
      gateway.wait_for_output("database reachable again (committer)", std::chrono::seconds(15)));
  EXPECT_EQ(
      request_once(gateway.port(), "POST", "/webhooks/stripe", stripe_headers(body), body).status,
      202);
  EXPECT_EQ(gateway.terminate(), 0);
  std::istringstream lines(gateway.output());
  std::string line;
  int warnings = 0;
  while (std::getline(lines, line)) {
    // Every line begins with its time: none is the tail of another.
    EXPECT_TRUE(line.size() > 24 && line[4] == '-' && line[10] == 'T') << line;
    warnings += line.find(" warning ") != std::string::npos;
  }
  EXPECT_GE(warnings, 1) << gateway.output();
  EXPECT_LE(warnings, 2) << gateway.output();
}

// Without auto_migrate, a database whose schema is missing is not ready: 503 until an operator
// runs `migrate`, then ready without a restart.
TEST(Outage, NotReadyUntilMigrated) {
  TestDatabase db;
  std::string config = gateway_config(db.url());
  const std::string url_line = "  url: \"" + db.url() + "\"\n";
  config.replace(config.find(url_line), url_line.size(), url_line + "  auto_migrate: false\n");
  Gateway gateway(config, {"serve"}, false);
  ASSERT_TRUE(gateway.wait_for_output("run migrate", std::chrono::seconds(10))) << gateway.output();
  Response ready = request_once(gateway.port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.json("code"), "unavailable");
  EXPECT_EQ(request_once(gateway.port(), "GET", "/healthz").status, 200);
  std::string body = stripe_body("evt_unmigrated");
  EXPECT_EQ(
      request_once(gateway.port(), "POST", "/webhooks/stripe", stripe_headers(body), body).status,
      503);

  TempFile file(config);
  RunResult migrated = run_binary({"migrate", "--config", file.path()});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.output;
  // The committer looks at the schema again within a second.
  ASSERT_TRUE(gateway.wait_for_output("database ready", std::chrono::seconds(10)));
  EXPECT_EQ(request_once(gateway.port(), "GET", "/readyz").status, 200);
  EXPECT_EQ(
      request_once(gateway.port(), "POST", "/webhooks/stripe", stripe_headers(body), body).status,
      202);
}

}  // namespace
}  // namespace flare::test
