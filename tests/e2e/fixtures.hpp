// Signing and configuration helpers shared by the end-to-end tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/database.hpp"
#include "support/gateway.hpp"
#include "support/http.hpp"

namespace flare::test {

inline const std::string kStripeSecret = "whsec_e2e_current_secret";
inline const std::string kStripePrevious = "whsec_e2e_previous_secret";
inline const std::string kGithubSecret = "gh_e2e_secret";
// API keys of the projects "shop" and "other".
inline const std::string kShopKey = "key-shop";
inline const std::string kOtherKey = "key-other";

std::int64_t now_unix();
std::string stripe_body(const std::string& event_id, const std::string& type = "invoice.paid");
// Headers of a Stripe delivery signed with `secret` at `t` (default: now).
HeaderList stripe_headers(const std::string& body, const std::string& secret = kStripeSecret,
                          std::int64_t t = 0);
HeaderList github_headers(const std::string& body, const std::string& delivery,
                          const std::string& event = "push");

// The value of the sample `series` (name and labels exactly as rendered) in the text of
// GET /metrics; -1 when absent.
double sample(const std::string& metrics, const std::string& series);

// Deliveries of one event: exactly one 202, every other one 200, all naming the same job.
void expect_one_job(const std::vector<Response>& responses);

// The e2e gateway configuration: projects "shop" and "other" with one API key each; sources
// "stripe" (2048-byte limit, two secrets), "stripe-connect" (same project), "scoped" (key per
// source), "github", "clerk" (Standard Webhooks, kDestinationSecret), "shopify"
// ("shpss_e2e_secret"), "slack" ("slack_e2e_secret"), and two `hmac` sources: "typeform"
// ("typeform_e2e_secret") and "zendesk" ("zendesk_e2e_secret"; "zendesk_retired_secret" ended
// 2026-01-01); API jobs get 3 attempts, 1 ms apart. `server_extra` is added under server:.
std::string gateway_config(const std::string& database_url, const std::string& server_extra = "");

// The Standard Webhooks specification's test secret, for destinations.
inline const std::string kDestinationSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// gateway_config plus a source "pushed" (Stripe-signed, project shop) whose jobs are pushed to
// http://127.0.0.1:<port>/hooks/stripe?tenant=1 with a 2 s timeout; workers: 2, 3 s leases,
// polling every 200 ms.
std::string delivery_config(
    const std::string& database_url, std::uint16_t port,
    const std::string& retry = "{ max_attempts: 3, base_ms: 1, max_ms: 1 }");

// A suite whose tests share one gateway (gateway_config) and its database.
class GatewaySuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  static std::unique_ptr<TestDatabase> db_;
  static std::unique_ptr<Gateway> gateway_;
};

// A self-signed certificate and key for 127.0.0.1, as PEM files.
struct Certificate {
  std::unique_ptr<TempFile> cert;
  std::unique_ptr<TempFile> key;
};
Certificate make_self_signed_certificate();

}  // namespace flare::test
