#include "gateway/sign.hpp"

#include <gtest/gtest.h>

#include <map>

#include "gateway/push.hpp"
#include "providers/provider.hpp"
#include "providers/standard.hpp"

namespace flare::gateway {
namespace {

// What `flare-gateway sign` prints must pass the gateway's own verification.
TEST(Sign, SamplesVerify) {
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  config::Hmac zendesk_like;
  zendesk_like.header = "X-Signature";
  zendesk_like.encoding = config::Hmac::Encoding::kBase64;
  zendesk_like.timestamp_header = "X-Timestamp";
  zendesk_like.signed_content =
      config::parse_template("{timestamp}.{header:X-Account}.{id}.{body}");
  zendesk_like.id_header = "X-Id";
  zendesk_like.type_pointer = "/type";
  for (std::string provider : {"stripe", "github", "standard", "shopify", "slack", "hmac"}) {
    config::Source source;
    source.name = provider;
    source.provider = provider;
    if (provider == "hmac") source.hmac = zendesk_like;
    // The first secret has ended: the sample is signed with the second.
    source.secrets = {{"first-secret-0123", now - std::chrono::seconds(1)},
                      {"second-secret-01", std::nullopt}};
    SignedRequest request = sign(source, std::nullopt, now);
    providers::Headers headers;
    for (const auto& [name, value] : request.headers) headers.add(name, value);
    providers::Verdict v = providers::make_provider(source)->verify({headers, request.body}, now);
    EXPECT_EQ(v.error, providers::VerifyError::kNone) << provider << ": " << v.detail;
    EXPECT_FALSE(v.event_id.empty());
  }
}

// The push signature, with the secret decoded by the configuration, against the Standard
// Webhooks specification's own vector.
TEST(Sign, PushSignatureMatchesTheStandardWebhooksVector) {
  config::Config c = config::parse(
      "database: { url: x }\nprojects: [{ id: p }]\nsources:\n  - { name: s, provider: github, "
      "project: p, secrets: [x], destination: { url: \"http://h/\", secret: "
      "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" } }\n",
      "vector.yaml");
  EXPECT_EQ(
      providers::standard_signature(c.sources[0].routes.at(0).key, "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                    1614265330, R"({"test": 2432232314})"),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(Sign, PushHeaders) {
  config::Route d;
  d.key = "0123456789abcdef";
  jobs::Delivery delivery;
  delivery.route = "billing";
  delivery.attempts = 2;
  jobs::Job job;
  job.id = "5b0c9a3e-0000-4000-8000-000000000001";
  job.type = "github.push";
  job.attempts = 5;  // over every route: the delivery's count is the one sent
  job.content_type = "application/x-www-form-urlencoded";
  job.source = "github";
  job.event_id = "d-1";
  job.payload = "a=1";
  auto headers = push_headers(job, delivery, d, 1700000000);
  std::map<std::string, std::string> h(headers.begin(), headers.end());
  EXPECT_EQ(h["Idempotency-Key"], "flare-5b0c9a3e-0000-4000-8000-000000000001");
  EXPECT_EQ(h["Flare-Job-Id"], job.id);
  EXPECT_EQ(h["Flare-Attempt"], "2");
  EXPECT_EQ(h["Flare-Source"], "github");
  EXPECT_EQ(h["Flare-Route"], "billing");
  EXPECT_EQ(h["Flare-Event-Id"], "d-1");
  EXPECT_EQ(h["Flare-Event-Type"], "github.push");
  EXPECT_EQ(h["Content-Type"], "application/x-www-form-urlencoded");
  EXPECT_EQ(h["webhook-id"], job.id);
  EXPECT_EQ(h["webhook-timestamp"], "1700000000");
  EXPECT_EQ(h["webhook-signature"],
            providers::standard_signature(d.key, job.id, 1700000000, "a=1"));
}

TEST(Sign, CurlCommandQuotes) {
  config::Config config;
  config.server.host = "0.0.0.0";
  config.server.port = 8080;
  config::Source source;
  source.name = "stripe";
  SignedRequest request{{{"Stripe-Signature", "t=1,v1=ab"}}, R"({"note":"it's"})"};
  EXPECT_EQ(curl_command(config, source, request),
            "curl -sS -X POST 'http://127.0.0.1:8080/webhooks/stripe' -H 'Stripe-Signature: "
            "t=1,v1=ab' --data-binary '{\"note\":\"it'\\''s\"}'");
}

}  // namespace
}  // namespace flare::gateway
