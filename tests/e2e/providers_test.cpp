// Every provider end to end through the real binary: valid → 202, duplicate → 200,
// forged → 401, stale → 401 (where the provider signs a time).
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "e2e/fixtures.hpp"
#include "providers/hmac.hpp"
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
          {"X-Shopify-Hmac-Sha256",
           providers::to_base64(std::string_view(reinterpret_cast<const char*>(mac.data()), 32))}};
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

}  // namespace
}  // namespace flare::test
