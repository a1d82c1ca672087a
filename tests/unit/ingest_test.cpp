#include "gateway/ingest.hpp"

#include <gtest/gtest.h>

#include "providers/hmac.hpp"

namespace flare::gateway {
namespace {

using Clock = std::chrono::system_clock;

config::Source stripe_source() {
  config::Source s;
  s.name = "stripe";
  s.provider = "stripe";
  s.project = "shop";
  s.secrets = {{"whsec_x", std::nullopt}};
  s.retry.max_attempts = 7;
  return s;
}

TEST(DeriveKey, TwoHundredCharactersAndNoMore) {
  config::Source s = stripe_source();  // "webhook:" is 8 characters
  EXPECT_EQ(derive_key(s, std::string(192, 'a'))->size(), 200u);
  EXPECT_FALSE(derive_key(s, std::string(193, 'a')));
  // Characters, not bytes: 192 two-byte characters fit.
  std::string e_acute;
  for (int i = 0; i < 192; ++i) e_acute += "\xc3\xa9";
  EXPECT_TRUE(derive_key(s, e_acute));
  EXPECT_FALSE(derive_key(s, e_acute + "\xc3\xa9"));
}

TEST(DeriveKey, RefusesEmptyControlAndInvalidUtf8) {
  config::Source s = stripe_source();
  EXPECT_FALSE(derive_key(s, ""));
  EXPECT_FALSE(derive_key(s, "evt\n1"));
  EXPECT_FALSE(derive_key(s, std::string("evt\0"
                                         "1",
                                         5)));
  EXPECT_FALSE(derive_key(s, "evt\x7f"));
  EXPECT_FALSE(derive_key(s, "evt\xc3"));          // truncated sequence
  EXPECT_FALSE(derive_key(s, "evt\xc0\xaf"));      // overlong
  EXPECT_FALSE(derive_key(s, "evt\xed\xa0\x80"));  // surrogate
  EXPECT_EQ(*derive_key(s, "evt_1"), "webhook:evt_1");
}

TEST(DeriveKey, Template) {
  config::Source s = stripe_source();
  s.key_template = config::parse_template("{provider}/{source}:{event_id}!");
  EXPECT_EQ(*derive_key(s, "e1"), "stripe/stripe:e1!");
}

struct Signed {
  providers::Headers headers;
  std::string t, sig, body;
};

Ingest run(const config::Source& cfg, const std::string& body, const std::string& content_type) {
  Source source{&cfg, providers::make_provider(cfg)};
  std::string t = "1700000000";
  std::string header =
      "t=" + t + ",v1=" + providers::to_hex(providers::hmac_sha256("whsec_x", t + "." + body));
  providers::Headers headers;
  headers.add("Stripe-Signature", header);
  if (!content_type.empty()) headers.add("Content-Type", content_type);
  return ingest(source, headers, body, Clock::time_point(std::chrono::seconds(1700000000)));
}

TEST(Ingest, BuildsTheJob) {
  config::Source cfg = stripe_source();
  std::string body = R"({"id":"evt_9","type":"payment_intent.succeeded"})";
  Ingest in = run(cfg, body, "application/json; charset=utf-8");
  ASSERT_EQ(in.outcome, Outcome::kEnqueue);
  EXPECT_EQ(in.job.project_id, "shop");
  EXPECT_EQ(in.job.idempotency_key, "webhook:evt_9");
  EXPECT_EQ(in.job.type, "stripe.payment_intent.succeeded");
  EXPECT_EQ(in.job.payload, body);
  EXPECT_EQ(in.job.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(in.job.source, "stripe");
  EXPECT_EQ(in.job.event_id, "evt_9");
  EXPECT_EQ(in.job.max_attempts, 7);
}

TEST(Ingest, JobTypeOverrideAndContentTypeFallback) {
  config::Source cfg = stripe_source();
  cfg.job_type = "Payments";
  Ingest in = run(cfg, R"({"id":"evt_9","type":"x"})", "");
  EXPECT_EQ(in.job.type, "Payments");
  EXPECT_EQ(in.job.content_type, "application/octet-stream");
  EXPECT_EQ(run(cfg, R"({"id":"evt_9","type":"x"})", "text/\x01plain").job.content_type,
            "application/octet-stream");
}

TEST(Ingest, Rejections) {
  config::Source cfg = stripe_source();
  EXPECT_EQ(run(cfg, "{", "").outcome, Outcome::kInvalidPayload);
  EXPECT_EQ(run(cfg, R"({"id":"evt\n","type":"x"})", "").outcome, Outcome::kInvalidEventId);
  EXPECT_EQ(run(cfg, "{\"id\":\"" + std::string(193, 'e') + "\",\"type\":\"x\"}", "").outcome,
            Outcome::kInvalidEventId);
  EXPECT_EQ(run(cfg, "{\"id\":\"e\",\"type\":\"" + std::string(200, 't') + "\"}", "").outcome,
            Outcome::kInvalidPayload);
}

TEST(WebhookReply, AcceptedDuplicateOrTheStoreFailure) {
  jobs::Result created{
      jobs::Outcome::kCreated, {"job-1", true, jobs::Status::kQueued, "t", "t"}, {}};
  created.job.idempotency_key = "webhook:evt_1";
  Reply accepted = webhook_reply(created);
  EXPECT_EQ(accepted.outcome, Outcome::kAccepted);
  EXPECT_EQ(accepted.body,
            R"({"status":"accepted","job_id":"job-1","idempotency_key":"webhook:evt_1"})");
  jobs::Result repeated = created;
  repeated.outcome = jobs::Outcome::kDuplicate;
  EXPECT_EQ(webhook_reply(repeated).outcome, Outcome::kDuplicate);
  jobs::Result down = created;
  down.outcome = jobs::Outcome::kUnavailable;
  EXPECT_EQ(webhook_reply(down).outcome, Outcome::kUnavailable);
  jobs::Result refused = created;
  refused.outcome = jobs::Outcome::kFailed;
  EXPECT_EQ(webhook_reply(refused).outcome, Outcome::kInternal);
}

}  // namespace
}  // namespace flare::gateway
