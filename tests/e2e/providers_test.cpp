// Every provider end to end through the real binary: valid → 202, duplicate → 200,
// forged → 401, stale → 401 (where the provider signs a time).
#include <gtest/gtest.h>

#include <ctime>
#include <stdexcept>

#include "config/config.hpp"
#include "e2e/fixtures.hpp"
#include "providers/generic_hmac.hpp"
#include "providers/hmac.hpp"
#include "providers/slack.hpp"
#include "providers/standard.hpp"

namespace flare::test {
namespace {

class Providers : public GatewaySuite {
 protected:
  static Response post(const std::string& source, const HeaderList& headers,
                       const std::string& body) {
    return request_once(gateway_->port(), "POST", "/webhooks/" + source, headers, body);
  }
};

HeaderList standard_headers(const std::string& id, const std::string& body, std::int64_t t,
                            const std::string& key) {
  return {{"Content-Type", "application/json"},
          {"webhook-id", id},
          {"webhook-timestamp", std::to_string(t)},
          {"webhook-signature", providers::standard_signature(key, id, t, body)}};
}

TEST_F(Providers, StandardWebhooks) {
  std::string key =
      config::parse(gateway_config("x"), "e2e.yaml").sources.at(4).secrets.at(0).key;  // "clerk"
  std::string body = R"({"type":"user.created","data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC"}})";
  Response first = post("clerk", standard_headers("msg_e2e_1", body, now_unix(), key), body);
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(first.json("idempotency_key"), "webhook:msg_e2e_1");
  EXPECT_EQ(db_->scalar("SELECT type FROM jobs WHERE id = '" + first.json("job_id") + "'"),
            "standard.user.created");
  // A retry is signed again, later: the same message.
  Response again = post("clerk", standard_headers("msg_e2e_1", body, now_unix() - 10, key), body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), first.json("job_id"));
  EXPECT_EQ(
      post("clerk", standard_headers("msg_e2e_2", body, now_unix(), "another key 123456"), body)
          .json("code"),
      "invalid_signature");
  Response stale = post("clerk", standard_headers("msg_e2e_3", body, now_unix() - 301, key), body);
  EXPECT_EQ(stale.status, 401);
  EXPECT_EQ(stale.json("code"), "timestamp_out_of_tolerance");
}

HeaderList shopify_headers(const std::string& event_id, const std::string& body,
                           const std::string& secret) {
  providers::Digest mac = providers::hmac_sha256(secret, body);
  return {{"Content-Type", "application/json"},
          {"X-Shopify-Topic", "orders/create"},
          {"X-Shopify-Event-Id", event_id},
          {"X-Shopify-Webhook-Id", "wh-" + event_id + "-" + std::to_string(now_unix())},
          {"X-Shopify-Hmac-Sha256", providers::to_base64(mac)}};
}

// Shopify signs no time, so there is no stale case.
TEST_F(Providers, Shopify) {
  std::string body = R"({"id":820982911946154508,"email":"jon@example.com"})";
  Response first = post("shopify", shopify_headers("ev-e2e-1", body, "shpss_e2e_secret"), body);
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(db_->scalar("SELECT type FROM jobs WHERE id = '" + first.json("job_id") + "'"),
            "shopify.orders/create");
  // Shopify's duplicate guidance: the event id is the same across retries and subscriptions.
  Response again = post("shopify", shopify_headers("ev-e2e-1", body, "shpss_e2e_secret"), body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), first.json("job_id"));
  Response forged = post("shopify", shopify_headers("ev-e2e-2", body, "guessed"), body);
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(forged.json("code"), "invalid_signature");
}

HeaderList slack_headers(const std::string& body, std::int64_t t,
                         const std::string& secret = "slack_e2e_secret") {
  return {{"Content-Type", "application/json"},
          {"X-Slack-Request-Timestamp", std::to_string(t)},
          {"X-Slack-Signature", providers::slack_signature(secret, std::to_string(t), body)}};
}

TEST_F(Providers, Slack) {
  std::string body =
      R"({"type":"event_callback","event_id":"Ev_e2e_1","event":{"type":"app_mention"}})";
  Response first = post("slack", slack_headers(body, now_unix()), body);
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(first.json("idempotency_key"), "webhook:Ev_e2e_1");
  EXPECT_EQ(db_->scalar("SELECT type FROM jobs WHERE id = '" + first.json("job_id") + "'"),
            "slack.app_mention");
  // Slack's retry carries the same event_id, signed again later.
  HeaderList retry = slack_headers(body, now_unix() + 1);
  retry.emplace_back("X-Slack-Retry-Num", "1");
  Response again = post("slack", retry, body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), first.json("job_id"));
  Response forged = post("slack", slack_headers(body, now_unix(), "guessed"), body);
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(forged.json("code"), "invalid_signature");
  Response stale = post("slack", slack_headers(body, now_unix() - 301), body);
  EXPECT_EQ(stale.status, 401);
  EXPECT_EQ(stale.json("code"), "timestamp_out_of_tolerance");
}

TEST_F(Providers, SlackUrlVerificationStoresNothing) {
  std::string before = db_->scalar("SELECT count(*) FROM jobs");
  std::string body =
      R"({"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"})";
  Response r = post("slack", slack_headers(body, now_unix()), body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(post("slack", slack_headers(body, now_unix(), "guessed"), body).status, 401);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM jobs"), before);
}

config::Hmac scheme_of(const std::string& source) {
  for (const config::Source& s : config::parse(gateway_config("x"), "e2e.yaml").sources) {
    if (s.name == source) return *s.hmac;
  }
  throw std::logic_error("no source " + source);
}

HeaderList typeform_headers(const std::string& body, const std::string& secret) {
  return {{"Content-Type", "application/json"},
          {"Typeform-Signature", providers::hmac_signature(scheme_of("typeform"), secret, body)}};
}

// Typeform signs no time, so there is no stale case.
TEST_F(Providers, HmacDescribedInYamlTypeform) {
  std::string body =
      R"({"event_id":"01HE2E0TYPEFORM","event_type":"form_response","form_response":{"form_id":"lT4Z3j"}})";
  Response first = post("typeform", typeform_headers(body, "typeform_e2e_secret"), body);
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(first.json("idempotency_key"), "webhook:01HE2E0TYPEFORM");
  EXPECT_EQ(db_->scalar("SELECT type FROM jobs WHERE id = '" + first.json("job_id") + "'"),
            "hmac.form_response");
  Response again = post("typeform", typeform_headers(body, "typeform_e2e_secret"), body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), first.json("job_id"));
  Response forged = post("typeform", typeform_headers(body, "guessed"), body);
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(forged.json("code"), "invalid_signature");
}

HeaderList zendesk_headers(const std::string& body, const std::string& timestamp,
                           const std::string& secret) {
  return {{"Content-Type", "application/json"},
          {"X-Zendesk-Webhook-Signature-Timestamp", timestamp},
          {"X-Zendesk-Webhook-Signature",
           providers::hmac_signature(scheme_of("zendesk"), secret, timestamp + body)}};
}

std::string rfc3339(std::int64_t unix_seconds) {
  std::time_t t = unix_seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

TEST_F(Providers, HmacDescribedInYamlZendeskWithARetiredSecret) {
  std::string body =
      R"({"id":"cbe4028c-7239-495d-b020-f22348516046","type":"zen:event-type:ticket.created","detail":{}})";
  Response first =
      post("zendesk", zendesk_headers(body, rfc3339(now_unix()), "zendesk_e2e_secret"), body);
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(db_->scalar("SELECT type FROM jobs WHERE id = '" + first.json("job_id") + "'"),
            "hmac.zen:event-type:ticket.created");
  Response again =
      post("zendesk", zendesk_headers(body, rfc3339(now_unix()), "zendesk_e2e_secret"), body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), first.json("job_id"));
  // The retired secret's not_after has passed: what it signs is refused like a forgery.
  Response retired =
      post("zendesk", zendesk_headers(body, rfc3339(now_unix()), "zendesk_retired_secret"), body);
  EXPECT_EQ(retired.status, 401);
  EXPECT_EQ(retired.json("code"), "invalid_signature");
  Response stale =
      post("zendesk", zendesk_headers(body, rfc3339(now_unix() - 301), "zendesk_e2e_secret"), body);
  EXPECT_EQ(stale.status, 401);
  EXPECT_EQ(stale.json("code"), "timestamp_out_of_tolerance");
}

}  // namespace
}  // namespace flare::test
