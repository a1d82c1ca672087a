#include "gateway/api.hpp"

#include <gtest/gtest.h>

namespace flare::gateway {
namespace {

config::Config two_projects() {
  config::Config c;
  c.projects.resize(2);
  c.projects[0].id = "shop";
  c.projects[0].api_key_sha256 = {providers::sha256("key-shop"), providers::sha256("key-shop-2")};
  c.projects[1].id = "other";
  c.projects[1].api_key_sha256 = {providers::sha256("key-other")};
  c.workers.retry.max_attempts = 7;
  return c;
}

class ApiTest : public ::testing::Test {
 protected:
  ApiPlan plan(Endpoint endpoint, std::string body, std::string_view query = {}) const {
    return api_.plan(config_.projects[0], ApiCall{endpoint, {}, {}, {}, query}, std::move(body));
  }
  // The plan is an answer now: a validation error naming `field`.
  static void expect_invalid(const ApiPlan& p, std::string_view field) {
    ASSERT_TRUE(p.reply);
    EXPECT_EQ(p.reply->outcome, Outcome::kValidationError) << p.reply->body;
    EXPECT_NE(p.reply->body.find("\"field\":\"" + std::string(field) + "\""), std::string::npos)
        << p.reply->body;
  }

  config::Config config_ = two_projects();
  Api api_{config_};
};

TEST_F(ApiTest, AuthenticatesABearerKeyOfAnyProject) {
  EXPECT_EQ(api_.authenticate("Bearer key-shop"), &config_.projects[0]);
  EXPECT_EQ(api_.authenticate("bearer   key-shop-2"), &config_.projects[0]);
  EXPECT_EQ(api_.authenticate("BEARER key-other"), &config_.projects[1]);
}

TEST_F(ApiTest, RefusesAbsentMalformedAndUnknownKeys) {
  for (std::string header : {std::string("Bearer wrong"), std::string("Basic a2V5LXNob3A="),
                             std::string("Bearer"), std::string("Bearer "), std::string("key-shop"),
                             std::string("Token key-shop"), "Bearer " + std::string(513, 'k')}) {
    EXPECT_EQ(api_.authenticate(header), nullptr) << header;
  }
  EXPECT_EQ(api_.authenticate(std::nullopt), nullptr);
}

TEST_F(ApiTest, CreateBuildsTheJobToEnqueue) {
  ApiPlan p = plan(Endpoint::kCreate,
                   R"({"type":"Report","payload":{"n":1},"idempotency_key":"r-1","priority":5})");
  ASSERT_TRUE(p.enqueue);
  EXPECT_FALSE(p.reply);
  EXPECT_EQ(p.enqueue->project_id, "shop");
  EXPECT_EQ(p.enqueue->type, "Report");
  EXPECT_EQ(p.enqueue->payload, R"({"n":1})");
  EXPECT_EQ(p.enqueue->idempotency_key, "r-1");
  EXPECT_EQ(p.enqueue->priority, 5);
  EXPECT_EQ(p.enqueue->max_attempts, 7);  // workers.retry's
  EXPECT_EQ(p.enqueue->content_type, "application/json");
}

TEST_F(ApiTest, CreateRefusesWhatItCannotStore) {
  ApiPlan not_json = plan(Endpoint::kCreate, "[1]");
  ASSERT_TRUE(not_json.reply);
  EXPECT_EQ(not_json.reply->outcome, Outcome::kInvalidJson);
  expect_invalid(plan(Endpoint::kCreate, R"({"type":"R","idempotencyKey":"k"})"), "idempotencyKey");
  expect_invalid(plan(Endpoint::kCreate, R"({"payload":1})"), "type");
  expect_invalid(
      plan(Endpoint::kCreate, R"({"type":"R","idempotency_key":")" + std::string(201, 'k') + "\"}"),
      "idempotency_key");
  expect_invalid(plan(Endpoint::kCreate, R"({"type":"R","run_at":"tomorrow"})"), "run_at");
  expect_invalid(plan(Endpoint::kCreate, R"({"type":"R","max_attempts":0})"), "max_attempts");
}

TEST_F(ApiTest, ListValidatesItsQuery) {
  ApiPlan ok = plan(Endpoint::kList, "", "status=dead&type=invoice%2Epaid&limit=500");
  EXPECT_FALSE(ok.reply);
  EXPECT_TRUE(ok.work);
  expect_invalid(plan(Endpoint::kList, "", "status=lost"), "status");
  expect_invalid(plan(Endpoint::kList, "", "limit=501"), "limit");
  expect_invalid(plan(Endpoint::kList, "", "cursor=zz"), "cursor");
  expect_invalid(plan(Endpoint::kList, "", "sort=asc"), "sort");
}

TEST_F(ApiTest, LeaseActionsNeedTheLeaseToken) {
  expect_invalid(plan(Endpoint::kComplete, "{}"), "lease_token");
  expect_invalid(plan(Endpoint::kFail, R"({"lease_token":"not-a-uuid"})"), "lease_token");
  expect_invalid(
      plan(Endpoint::kHeartbeat,
           R"({"lease_token":"0190a5c2-7c3e-7d4a-9b1f-0123456789ab","lease_seconds":0})"),
      "lease_seconds");
  ApiPlan fail = plan(Endpoint::kFail,
                      R"({"lease_token":"0190a5c2-7c3e-7d4a-9b1f-0123456789ab","retry":false})");
  EXPECT_FALSE(fail.reply);
  EXPECT_TRUE(fail.work);
}

TEST_F(ApiTest, ClaimValidatesTypesAndBounds) {
  ApiPlan claim = plan(Endpoint::kClaim, R"({"types":["a","b"],"max":100})");
  EXPECT_TRUE(claim.poll);
  EXPECT_EQ(claim.wait.count(), 0) << "no long poll unless asked";
  EXPECT_EQ(plan(Endpoint::kClaim, R"({"wait_seconds":30})").wait, std::chrono::seconds(30));
  expect_invalid(plan(Endpoint::kClaim, R"({"types":[""]})"), "types");
  expect_invalid(plan(Endpoint::kClaim, R"({"max":101})"), "max");
  expect_invalid(plan(Endpoint::kClaim, R"({"wait_seconds":31})"), "wait_seconds");
}

TEST(ApiEnqueued, TheNewJobAConflictOrTheStoreFailure) {
  jobs::Result r{jobs::Outcome::kCreated,
                 {"job-1", true, jobs::Status::kQueued, "2026-01-01T00:00:00.000000Z",
                  "2026-01-01T00:00:00.000000Z"},
                 {}};
  r.job.project_id = "shop";
  r.job.type = "Report";
  r.job.payload = R"({"n":1})";
  r.job.idempotency_key = "r-1";
  Reply created = Api::enqueued(r);
  EXPECT_EQ(created.outcome, Outcome::kCreated);
  EXPECT_NE(created.body.find(R"("id":"job-1")"), std::string::npos) << created.body;
  EXPECT_NE(created.body.find(R"("payload":{"n":1})"), std::string::npos) << created.body;
  EXPECT_NE(created.body.find(R"("status":"queued")"), std::string::npos) << created.body;
  r.outcome = jobs::Outcome::kDuplicate;
  r.stored.status = jobs::Status::kDead;
  Reply conflict = Api::enqueued(r);
  EXPECT_EQ(conflict.outcome, Outcome::kIdempotencyConflict);
  EXPECT_NE(conflict.body.find(R"("job_id":"job-1","status":"dead")"), std::string::npos)
      << conflict.body;
  r.outcome = jobs::Outcome::kUnavailable;
  EXPECT_EQ(Api::enqueued(r).outcome, Outcome::kUnavailable);
  r.outcome = jobs::Outcome::kFailed;
  EXPECT_EQ(Api::enqueued(r).outcome, Outcome::kInternal);
}

}  // namespace
}  // namespace flare::gateway
