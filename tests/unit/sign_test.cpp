#include "gateway/sign.hpp"

#include <gtest/gtest.h>

#include "providers/provider.hpp"

namespace flare::gateway {
namespace {

// What `flare-gateway sign` prints must pass the gateway's own verification.
TEST(Sign, SamplesVerify) {
  for (std::string provider : {"stripe", "github"}) {
    config::Source source;
    source.name = provider;
    source.provider = provider;
    source.secrets = {"first", "second"};
    auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    SignedRequest request = sign(source, std::nullopt, now);
    providers::Headers headers;
    for (const auto& [name, value] : request.headers) headers.add(name, value);
    providers::Verdict v = providers::make_provider(source)->verify({headers, request.body}, now);
    EXPECT_EQ(v.error, providers::VerifyError::kNone) << provider << ": " << v.detail;
    EXPECT_FALSE(v.event_id.empty());
  }
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
