#include "gateway/dispatch.hpp"

#include <gtest/gtest.h>

namespace flare::gateway {
namespace {

constexpr std::string_view kJob = "0190a5c2-7c3e-7d4a-9b1f-0123456789ab";

class DispatchTest : public ::testing::Test {
 protected:
  DispatchTest() {
    stripe_.name = "stripe";
    stripe_.provider = "stripe";
    stripe_.secrets = {{"whsec_x", std::nullopt}};
    sources_.emplace("stripe", Source{&stripe_, providers::make_provider(stripe_)});
  }

  Dispatch at(std::string_view method, std::string_view target, std::string_view base = "") const {
    return dispatch(method, target, base, sources_, true);
  }

  // A reply the dispatcher gives, at once or after authentication.
  static void expect_reply(const Dispatch& r, Dispatch::Kind kind, Outcome outcome,
                           std::string_view allow = {}) {
    EXPECT_EQ(r.kind, kind);
    EXPECT_EQ(r.reply.outcome, outcome) << r.reply.body;
    EXPECT_EQ(r.reply.allow, allow);
  }

  config::Source stripe_;
  Sources sources_;
};

TEST_F(DispatchTest, WebhookOfAKnownSourceReadsItsBody) {
  Dispatch r = at("POST", "/webhooks/stripe?x=1");
  EXPECT_EQ(r.kind, Dispatch::Kind::kWebhook);
  EXPECT_EQ(r.source, &sources_.at("stripe"));
  EXPECT_TRUE(r.webhook_path);
}

TEST_F(DispatchTest, WebhookRefusalsAreCountedAsWebhooks) {
  Dispatch unknown = at("POST", "/webhooks/nope");
  expect_reply(unknown, Dispatch::Kind::kReply, Outcome::kUnknownSource);
  EXPECT_TRUE(unknown.webhook_path);
  EXPECT_EQ(unknown.source, nullptr);
  // The source is named before the method is checked.
  expect_reply(at("GET", "/webhooks/nope"), Dispatch::Kind::kReply, Outcome::kUnknownSource);
  Dispatch get = at("GET", "/webhooks/stripe");
  expect_reply(get, Dispatch::Kind::kReply, Outcome::kMethodNotAllowed, "POST");
  EXPECT_EQ(get.source, &sources_.at("stripe"));
  EXPECT_TRUE(get.webhook_path);
}

TEST_F(DispatchTest, OperationsRoutesTakeGetOnly) {
  EXPECT_EQ(at("GET", "/metrics").kind, Dispatch::Kind::kMetrics);
  EXPECT_EQ(at("GET", "/healthz").kind, Dispatch::Kind::kHealth);
  EXPECT_EQ(at("GET", "/readyz?verbose").kind, Dispatch::Kind::kReady);
  expect_reply(at("POST", "/healthz"), Dispatch::Kind::kReply, Outcome::kMethodNotAllowed, "GET");
  expect_reply(at("GET", "/"), Dispatch::Kind::kReply, Outcome::kNotFound);
  expect_reply(at("GET", "/metrics/x"), Dispatch::Kind::kReply, Outcome::kNotFound);
  EXPECT_FALSE(at("GET", "/metrics").webhook_path);
}

TEST_F(DispatchTest, EveryRouteLivesUnderTheBasePath) {
  EXPECT_EQ(at("POST", "/flare/webhooks/stripe", "/flare").kind, Dispatch::Kind::kWebhook);
  EXPECT_EQ(at("GET", "/flare/healthz", "/flare").kind, Dispatch::Kind::kHealth);
  expect_reply(at("GET", "/healthz", "/flare"), Dispatch::Kind::kReply, Outcome::kNotFound);
  expect_reply(at("GET", "/flarehealthz", "/flare"), Dispatch::Kind::kReply, Outcome::kNotFound);
  expect_reply(at("GET", "/flare", "/flare"), Dispatch::Kind::kReply, Outcome::kNotFound);
}

TEST_F(DispatchTest, ConsolePathsGoToTheConsoleOnlyWhenItIsOn) {
  Dispatch r = at("POST", "/flare/console/jobs/shop/x/retry?notice=1", "/flare");
  EXPECT_EQ(r.kind, Dispatch::Kind::kConsole);
  EXPECT_EQ(r.console_path, "/jobs/shop/x/retry");
  EXPECT_EQ(r.query, "notice=1");
  EXPECT_EQ(at("GET", "/console").console_path, "");
  EXPECT_EQ(at("GET", "/consoles").kind, Dispatch::Kind::kReply);
  Dispatch off = dispatch("GET", "/console/login", "", sources_, false);
  expect_reply(off, Dispatch::Kind::kReply, Outcome::kNotFound);
}

TEST_F(DispatchTest, ApiEndpoints) {
  struct Case {
    std::string_view method;
    std::string target;
    Endpoint endpoint;
  };
  std::string job(kJob);
  for (const Case& c :
       std::vector<Case>{{"POST", "/v1/jobs", Endpoint::kCreate},
                         {"GET", "/v1/jobs/", Endpoint::kList},
                         {"POST", "/v1/jobs/claim", Endpoint::kClaim},
                         {"GET", "/v1/jobs/" + job, Endpoint::kGet},
                         {"GET", "/v1/jobs/" + job + "/", Endpoint::kGet},
                         {"DELETE", "/v1/jobs/" + job, Endpoint::kDelete},
                         {"POST", "/v1/jobs/" + job + "/retry", Endpoint::kRetry},
                         {"POST", "/v1/jobs/" + job + "/cancel", Endpoint::kCancel},
                         {"POST", "/v1/jobs/" + job + "/heartbeat", Endpoint::kHeartbeat},
                         {"POST", "/v1/jobs/" + job + "/complete", Endpoint::kComplete},
                         {"POST", "/v1/jobs/" + job + "/fail", Endpoint::kFail}}) {
    Dispatch r = at(c.method, c.target);
    EXPECT_EQ(r.kind, Dispatch::Kind::kApi) << c.method << " " << c.target;
    EXPECT_EQ(r.api.endpoint, c.endpoint) << c.method << " " << c.target;
  }
  std::string target = "/v1/jobs/" + job;  // the dispatch's views point into it
  EXPECT_EQ(at("GET", target).api.id, kJob);
  Dispatch list = at("GET", "/v1/jobs?status=dead&limit=2");
  EXPECT_EQ(list.api.query, "status=dead&limit=2");
}

// 404 and 405 under /v1/jobs wait for the key to be checked: an unauthenticated caller learns
// nothing of the API's paths.
TEST_F(DispatchTest, ApiRefusalsComeAfterAuthentication) {
  std::string job(kJob);
  expect_reply(at("PUT", "/v1/jobs"), Dispatch::Kind::kApiReply, Outcome::kMethodNotAllowed,
               "GET, POST");
  expect_reply(at("GET", "/v1/jobs/claim"), Dispatch::Kind::kApiReply, Outcome::kMethodNotAllowed,
               "POST");
  expect_reply(at("POST", "/v1/jobs/" + job), Dispatch::Kind::kApiReply, Outcome::kMethodNotAllowed,
               "GET, DELETE");
  expect_reply(at("GET", "/v1/jobs/" + job + "/retry"), Dispatch::Kind::kApiReply,
               Outcome::kMethodNotAllowed, "POST");
  expect_reply(at("POST", "/v1/jobs/" + job + "/explode"), Dispatch::Kind::kApiReply,
               Outcome::kNotFound);
  expect_reply(at("GET", "/v1/jobs/not-a-uuid"), Dispatch::Kind::kApiReply, Outcome::kJobNotFound);
  expect_reply(at("POST", "/v1/jobs/not-a-uuid/cancel"), Dispatch::Kind::kApiReply,
               Outcome::kJobNotFound);
  expect_reply(at("GET", "/v1/jobsx"), Dispatch::Kind::kReply, Outcome::kNotFound);
}

}  // namespace
}  // namespace flare::gateway
