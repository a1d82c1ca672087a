// The executable's commands and its life cycle: configuration errors, migrate, sign, SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <regex>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"

namespace flare::test {
namespace {

TEST(Cli, VersionAndHelp) {
  RunResult version = run_binary({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.output.rfind("flare-gateway ", 0), 0u);
  RunResult help = run_binary({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"serve --config", "migrate --config", "check-config", "sign"}) {
    EXPECT_NE(help.output.find(command), std::string::npos) << command;
  }
  EXPECT_EQ(run_binary({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run_binary({"serve"}).exit_code, 2);
}

TEST(Cli, CheckConfig) {
  TempFile good(gateway_config("host=/nowhere"));
  RunResult ok = run_binary({"check-config", good.path()});
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.output, "OK\n");

  TempFile bad(
      "database:\n  url: x\n  pool: 3\nsources:\n  - { name: a, provider: github, project: nope, "
      "secrets: [s] }\n");
  RunResult refused = run_binary({"check-config", bad.path()});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_EQ(refused.output, bad.path() + ":3:3: database.pool: unknown key\n" + bad.path() +
                                ":5:43: sources[0].project: unknown project \"nope\"\n");
  // serve refuses the same file before doing anything else.
  RunResult serve = run_binary({"serve", "--config", bad.path()});
  EXPECT_EQ(serve.exit_code, 2);
  EXPECT_NE(serve.output.find(":3:3: database.pool: unknown key"), std::string::npos);
  RunResult missing = run_binary({"check-config", "/nonexistent.yaml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.output, "/nonexistent.yaml: cannot open the file\n");
}

TEST(Cli, MigrateTwice) {
  TestDatabase db;
  TempFile config(gateway_config(db.url()));
  RunResult first = run_binary({"migrate", "--config", config.path()});
  EXPECT_EQ(first.exit_code, 0) << first.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      first.output, m, std::regex(R"(applied ([1-9]\d*) migration\(s\); schema at version (\d+))")))
      << first.output;
  EXPECT_EQ(m[1].str(), m[2].str());  // every migration, from an empty database
  RunResult second = run_binary({"migrate", "--config", config.path()});
  EXPECT_EQ(second.exit_code, 0);
  EXPECT_NE(second.output.find("applied 0 migration(s); schema at version " + m[2].str()),
            std::string::npos)
      << second.output;
  TempFile unreachable(gateway_config("host=/nonexistent-dir dbname=x"));
  EXPECT_EQ(run_binary({"migrate", "--config", unreachable.path()}).exit_code, 1);
}

TEST(Cli, PortInUseIsAClearError) {
  TestDatabase db;
  Gateway first(gateway_config(db.url()));
  std::string config = gateway_config(db.url());
  config.replace(config.find("127.0.0.1:0"), 11, "127.0.0.1:" + std::to_string(first.port()));
  TempFile taken(config);
  RunResult second = run_binary({"serve", "--config", taken.path()});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.output.find("cannot listen on 127.0.0.1:" + std::to_string(first.port()) +
                               ": Address already in use"),
            std::string::npos)
      << second.output;
}

TEST(Cli, SignPrintsACurlCommand) {
  TempFile config(gateway_config("host=/nowhere"));
  RunResult r = run_binary({"sign", "--config", config.path(), "--source", "stripe"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output.rfind("curl -sS -X POST 'http://127.0.0.1:0/webhooks/stripe' ", 0), 0u)
      << r.output;
  EXPECT_NE(r.output.find("-H 'Stripe-Signature: t="), std::string::npos);
  EXPECT_EQ(run_binary({"sign", "--config", config.path(), "--source", "nope"}).exit_code, 2);
}

// SIGTERM: no new connections, the request in flight is answered, exit 0.
TEST(Cli, SigtermFinishesTheRequestInFlight) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url()));
  std::string body = stripe_body("evt_in_flight");
  RawConnection raw(gateway.port());
  std::string head = "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n";
  for (const auto& [name, value] : stripe_headers(body)) head += name + ": " + value + "\r\n";
  raw.send(head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           body.substr(0, 10));
  RawConnection idle(gateway.port());
  // Both connections are accepted before the signal: the in-flight one is mid-body.
  ASSERT_EQ(request_once(gateway.port(), "GET", "/healthz").status, 200);

  gateway.signal(SIGTERM);
  ASSERT_TRUE(gateway.wait_for_output("stopping", std::chrono::seconds(5)));
  EXPECT_TRUE(idle.closed_within(5000));  // an idle keep-alive connection is closed
  EXPECT_THROW(RawConnection{gateway.port()}, std::runtime_error);  // no longer accepting
  raw.send(body.substr(10));
  Response r = raw.read_response();
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_EQ(gateway.terminate(), 0);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs WHERE event_id = 'evt_in_flight'"), "1");
}

}  // namespace
}  // namespace flare::test
