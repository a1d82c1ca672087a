#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "providers/github.hpp"
#include "providers/hmac.hpp"
#include "providers/shopify.hpp"
#include "providers/standard.hpp"
#include "providers/stripe.hpp"
#include "text/text.hpp"

namespace flare::providers {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::system_clock;

Clock::time_point at(std::int64_t unix_seconds) { return Clock::time_point(seconds(unix_seconds)); }

std::vector<config::Secret> keys(std::initializer_list<std::string> values) {
  std::vector<config::Secret> out;
  for (const std::string& v : values) out.push_back({v, std::nullopt});
  return out;
}

Verdict verify(const Provider& p, const std::vector<std::pair<std::string, std::string>>& fields,
               const std::string& body, Clock::time_point now = at(1700000000)) {
  Headers headers;
  for (const auto& [name, value] : fields) headers.add(name, value);
  return p.verify(InboundRequest{headers, body}, now);
}

// Signs the way Stripe documents: HMAC-SHA256 of "<t>.<body>" keyed with the secret as is.
std::string stripe_v1(const std::string& secret, const std::string& t, const std::string& body) {
  return to_hex(hmac_sha256(secret, t + "." + body));
}

TEST(Hmac, Rfc4231TestCase2) {
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Hmac, HexParsing) {
  std::string hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  ASSERT_TRUE(digest_from_hex(hex));
  EXPECT_EQ(to_hex(*digest_from_hex(hex)), hex);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_TRUE(digest_from_hex(upper));
  EXPECT_FALSE(digest_from_hex(hex.substr(1)));
  EXPECT_FALSE(digest_from_hex(hex + "0"));
  EXPECT_FALSE(digest_from_hex(std::string(63, '0') + "g"));
  EXPECT_FALSE(digest_from_hex(""));
}

// GitHub's documented example ("Validating webhook deliveries").
TEST(Github, DocumentedVector) {
  GithubProvider github(keys({"It's a Secret to Everybody"}));
  Verdict v = verify(github,
                     {{"X-Hub-Signature-256",
                       "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
                      {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
                      {"x-github-event", "push"}},
                     "Hello, World!");
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  EXPECT_EQ(v.event_type, "push");
}

TEST(Github, Errors) {
  GithubProvider github(keys({"It's a Secret to Everybody"}));
  const std::string good =
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  const std::pair<std::string, std::string> id{"X-GitHub-Delivery", "d-1"},
      ev{"X-GitHub-Event", "push"};
  EXPECT_EQ(verify(github, {id, ev}, "Hello, World!").error, VerifyError::kMissingSignature);
  EXPECT_EQ(verify(github, {{"X-Hub-Signature-256", ""}, id, ev}, "Hello, World!").error,
            VerifyError::kMissingSignature);
  // GitHub's legacy SHA-1 header alone is not enough.
  EXPECT_EQ(verify(github, {{"X-Hub-Signature", "sha1=abc"}, id, ev}, "Hello, World!").error,
            VerifyError::kMissingSignature);
  for (std::string bad :
       {std::string("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
        std::string("sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
        good.substr(0, good.size() - 1), good + "00", std::string("sha256="),
        std::string("sha256=") + std::string(100000, 'a')}) {
    EXPECT_EQ(verify(github, {{"X-Hub-Signature-256", bad}, id, ev}, "Hello, World!").error,
              VerifyError::kInvalidSignature)
        << bad.substr(0, 80);
  }
  EXPECT_EQ(verify(github, {{"X-Hub-Signature-256", good}, id, ev}, "Hello, World?").error,
            VerifyError::kInvalidSignature);
  EXPECT_EQ(verify(github, {{"X-Hub-Signature-256", good}, ev}, "Hello, World!").error,
            VerifyError::kInvalidEventId);
  EXPECT_EQ(verify(github, {{"X-Hub-Signature-256", good}, {"X-GitHub-Delivery", ""}, ev},
                   "Hello, World!")
                .error,
            VerifyError::kInvalidEventId);
  EXPECT_EQ(verify(github, {{"X-Hub-Signature-256", good}, id}, "Hello, World!").error,
            VerifyError::kInvalidPayload);
}

TEST(Github, Rotation) {
  GithubProvider github(keys({"new secret", "It's a Secret to Everybody"}));
  Verdict v = verify(github,
                     {{"X-Hub-Signature-256",
                       "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
                      {"X-GitHub-Delivery", "d"},
                      {"X-GitHub-Event", "ping"}},
                     "Hello, World!");
  EXPECT_EQ(v.error, VerifyError::kNone);
}

std::map<std::string, std::string> read_fixture(const std::string& name) {
  std::ifstream in(std::string(FLARE_TEST_DATA) + "/" + name);
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// Made by Stripe's own Node SDK (tests/data/make_stripe_fixture.js).
TEST(Stripe, SdkFixture) {
  auto f = read_fixture("stripe_sdk.txt");
  ASSERT_FALSE(f["header"].empty());
  StripeProvider stripe(keys({f["secret"]}), seconds(300));
  Verdict v = verify(stripe, {{"Stripe-Signature", f["header"]}}, f["payload"],
                     at(std::stoll(f["timestamp"])));
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, "evt_1PfixtureSDK0001");
  EXPECT_EQ(v.event_type, "payment_intent.succeeded");
}

const std::string kSecret = "whsec_test_secret";
const std::string kBody = R"({"id":"evt_123","type":"invoice.paid","data":{}})";

TEST(Stripe, DocumentedScheme) {
  StripeProvider stripe(keys({kSecret}), seconds(300));
  Verdict v = verify(
      stripe, {{"Stripe-Signature", "t=1700000000,v1=" + stripe_v1(kSecret, "1700000000", kBody)}},
      kBody);
  EXPECT_EQ(v.error, VerifyError::kNone);
  EXPECT_EQ(v.event_id, "evt_123");
  EXPECT_EQ(v.event_type, "invoice.paid");
}

TEST(Stripe, RotationAndSeveralV1) {
  std::string t = "1700000000";
  std::string old_sig = stripe_v1("whsec_old", t, kBody);
  std::string new_sig = stripe_v1(kSecret, t, kBody);
  StripeProvider only_new(keys({kSecret}), seconds(300));
  StripeProvider both(keys({kSecret, "whsec_old"}), seconds(300));
  // Stripe sends one v1 per active secret while an endpoint secret is being rolled.
  EXPECT_EQ(verify(only_new, {{"Stripe-Signature", "t=" + t + ",v1=" + old_sig + ",v1=" + new_sig}},
                   kBody)
                .error,
            VerifyError::kNone);
  EXPECT_EQ(verify(both, {{"Stripe-Signature", "t=" + t + ",v1=" + old_sig}}, kBody).error,
            VerifyError::kNone);
  EXPECT_EQ(verify(only_new, {{"Stripe-Signature", "t=" + t + ",v1=" + old_sig}}, kBody).error,
            VerifyError::kInvalidSignature);
  // v0 is ignored, whatever it holds; unknown schemes too.
  EXPECT_EQ(verify(only_new, {{"Stripe-Signature", "t=" + t + ",v0=" + new_sig}}, kBody).error,
            VerifyError::kInvalidSignature);
  EXPECT_EQ(
      verify(only_new, {{"Stripe-Signature", "t=" + t + ",v0=zz,v9=x,v1=" + new_sig}}, kBody).error,
      VerifyError::kNone);
}

TEST(Stripe, ToleranceEdgesBothDirections) {
  StripeProvider stripe(keys({kSecret}), seconds(300));
  std::string t = "1700000000";
  std::vector<std::pair<std::string, std::string>> h{
      {"Stripe-Signature", "t=" + t + ",v1=" + stripe_v1(kSecret, t, kBody)}};
  EXPECT_EQ(verify(stripe, h, kBody, at(1700000300)).error, VerifyError::kNone);
  EXPECT_EQ(verify(stripe, h, kBody, at(1700000301)).error, VerifyError::kStale);
  EXPECT_EQ(verify(stripe, h, kBody, at(1699999700)).error, VerifyError::kNone);
  EXPECT_EQ(verify(stripe, h, kBody, at(1699999699)).error, VerifyError::kStale);
}

TEST(Stripe, ForgedStaleIsInvalidNotStale) {
  StripeProvider stripe(keys({kSecret}), seconds(300));
  std::string sig = stripe_v1("whsec_other", "1", kBody);
  EXPECT_EQ(verify(stripe, {{"Stripe-Signature", "t=1,v1=" + sig}}, kBody).error,
            VerifyError::kInvalidSignature);
}

TEST(Stripe, MalformedEmptyAndHugeHeaders) {
  StripeProvider stripe(keys({kSecret}), seconds(300));
  std::string t = "1700000000";
  std::string sig = stripe_v1(kSecret, t, kBody);
  EXPECT_EQ(verify(stripe, {}, kBody).error, VerifyError::kMissingSignature);
  EXPECT_EQ(verify(stripe, {{"Stripe-Signature", ""}}, kBody).error,
            VerifyError::kMissingSignature);
  for (std::string bad :
       {std::string("garbage"), std::string(","), std::string("t=,v1=") + sig, "v1=" + sig,
        "t=" + t, "t=abc,v1=" + sig, "t=-5,v1=" + sig, "t=1e9,v1=" + sig,
        "t=" + t + ",t=" + t + ",v1=" + sig, "t=99999999999999999999,v1=" + sig,
        "t=" + t + ",v1=" + sig.substr(0, 63), "t=" + t + ",v1=" + std::string(64, 'g'),
        "t=" + t + ",v1=" + sig + "," + std::string(5000, 'x')}) {
    EXPECT_EQ(verify(stripe, {{"Stripe-Signature", bad}}, kBody).error,
              VerifyError::kInvalidSignature)
        << bad.substr(0, 80);
  }
  // A body changed after signing.
  EXPECT_EQ(verify(stripe, {{"Stripe-Signature", "t=" + t + ",v1=" + sig}}, kBody + " ").error,
            VerifyError::kInvalidSignature);
}

TEST(Stripe, EventIdentity) {
  StripeProvider stripe(keys({kSecret}), seconds(300));
  auto check = [&](const std::string& body) {
    std::string t = "1700000000";
    return verify(stripe, {{"Stripe-Signature", "t=" + t + ",v1=" + stripe_v1(kSecret, t, body)}},
                  body);
  };
  EXPECT_EQ(check("not json").error, VerifyError::kInvalidPayload);
  EXPECT_EQ(check("").error, VerifyError::kInvalidPayload);
  EXPECT_EQ(check("[1,2]").error, VerifyError::kInvalidPayload);
  EXPECT_EQ(check(std::string(100000, '[')).error,
            VerifyError::kInvalidPayload);  // no stack overflow
  EXPECT_EQ(check(R"({"type":"x"})").error, VerifyError::kInvalidEventId);
  EXPECT_EQ(check(R"({"id":"","type":"x"})").error, VerifyError::kInvalidEventId);
  EXPECT_EQ(check(R"({"id":7,"type":"x"})").error, VerifyError::kInvalidEventId);
  EXPECT_EQ(check(R"({"id":"evt_1"})").error, VerifyError::kInvalidPayload);
  Verdict v = check(R"({"id":"evt_\u00e9","type":"charge.refunded","nested":{"id":"no"}})");
  EXPECT_EQ(v.error, VerifyError::kNone);
  EXPECT_EQ(v.event_id, "evt_\xc3\xa9");
  EXPECT_EQ(v.event_type, "charge.refunded");
}

}  // namespace
}  // namespace flare::providers

namespace flare::providers {
namespace {

// The Standard Webhooks reference libraries' vector; the key is whsec_'s base64, decoded.
std::string standard_key() {
  config::Config c = config::parse(
      "database: { url: x }\nprojects: [{ id: p }]\nsources:\n  - { name: s, provider: standard, "
      "project: p, secrets: [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"] }\n",
      "standard.yaml");
  return c.sources[0].secrets[0].key;
}

std::string standard_key_of(const std::string& whsec) {
  return *text::decode_base64(whsec.substr(std::string("whsec_").size()));
}

const std::string kVectorBody = R"({"test": 2432232314})";
const std::string kVectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

Verdict standard(const std::string& signature, std::int64_t now,
                 const std::string& body = kVectorBody, const std::string& prefix = "webhook-") {
  StandardProvider p(keys({"not-this-one-xxxxxxxx", standard_key()}), std::chrono::seconds(300));
  return verify(p,
                {{prefix + "id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
                 {prefix + "timestamp", "1614265330"},
                 {prefix + "signature", signature}},
                body, at(now));
}

TEST(Standard, PublishedVector) {
  EXPECT_EQ(standard_key().size(), 24u);
  EXPECT_EQ(
      standard_signature(standard_key(), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, kVectorBody),
      kVectorSignature);
  // The vector's body has no "type": past the signature and the clock, that is all it lacks.
  EXPECT_EQ(standard(kVectorSignature, 1614265330).error, VerifyError::kInvalidPayload);
  EXPECT_EQ(standard("v1,bm9wZQ== " + kVectorSignature, 1614265330, kVectorBody, "svix-").error,
            VerifyError::kInvalidPayload);
}

TEST(Standard, VerifiedEvent) {
  std::string body = R"({"type":"user.created","data":{"id":"user_1"}})";
  std::string sig =
      standard_signature(standard_key(), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
  Verdict v = standard(sig, 1614265330, body);
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
  EXPECT_EQ(v.event_type, "user.created");
}

TEST(Standard, ReferenceLibraryCases) {
  EXPECT_EQ(standard("v1,", 1614265330).error, VerifyError::kInvalidSignature);  // partial
  EXPECT_EQ(standard("v2," + kVectorSignature.substr(3), 1614265330).error,
            VerifyError::kInvalidSignature);  // unknown scheme
  EXPECT_EQ(standard(kVectorSignature, 1614265330 + 301).error, VerifyError::kStale);
  EXPECT_EQ(standard(kVectorSignature, 1614265330 - 301).error, VerifyError::kStale);
  EXPECT_EQ(standard(kVectorSignature, 1614265330 + 300).error, VerifyError::kInvalidPayload);
  EXPECT_EQ(standard(kVectorSignature, 1614265330, kVectorBody + " ").error,
            VerifyError::kInvalidSignature);
  EXPECT_EQ(standard("", 1614265330).error, VerifyError::kMissingSignature);
  EXPECT_EQ(standard(std::string(5000, 'v'), 1614265330).error, VerifyError::kInvalidSignature);
  StandardProvider p(keys({standard_key()}), std::chrono::seconds(300));
  EXPECT_EQ(verify(p, {{"webhook-id", "m"}, {"webhook-signature", kVectorSignature}}, "{}").error,
            VerifyError::kMissingSignature);
  EXPECT_EQ(verify(p,
                   {{"webhook-id", "m"},
                    {"webhook-timestamp", "12a"},
                    {"webhook-signature", kVectorSignature}},
                   "{}")
                .error,
            VerifyError::kInvalidSignature);
}

std::string shopify_signature(const std::string& secret, const std::string& body) {
  Digest mac = hmac_sha256(secret, body);
  return to_base64(mac);
}

TEST(Shopify, VerifiesWithRotationAndReadsTheEvent) {
  ShopifyProvider p(keys({"new-secret", "old-secret"}), "X-Shopify-Event-Id");
  std::string body = R"({"id":820982911946154508,"email":"jon@example.com"})";
  Verdict v = verify(p,
                     {{"X-Shopify-Hmac-Sha256", shopify_signature("old-secret", body)},
                      {"X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"},
                      {"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
                      {"X-Shopify-Topic", "orders/create"}},
                     body);
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, "98880550-7158-44d4-b7cd-2c97c8a091b5");
  EXPECT_EQ(v.event_type, "orders/create");
  ShopifyProvider by_webhook(keys({"new-secret"}), "X-Shopify-Webhook-Id");
  EXPECT_EQ(verify(by_webhook,
                   {{"X-Shopify-Hmac-Sha256", shopify_signature("new-secret", body)},
                    {"X-Shopify-Webhook-Id", "w-1"},
                    {"X-Shopify-Topic", "orders/create"}},
                   body)
                .event_id,
            "w-1");
}

TEST(Shopify, Errors) {
  ShopifyProvider p(keys({"s"}), "X-Shopify-Event-Id");
  std::string good = shopify_signature("s", "{}");
  EXPECT_EQ(verify(p, {}, "{}").error, VerifyError::kMissingSignature);
  EXPECT_EQ(verify(p, {{"X-Shopify-Hmac-Sha256", shopify_signature("t", "{}")}}, "{}").error,
            VerifyError::kInvalidSignature);
  EXPECT_EQ(verify(p, {{"X-Shopify-Hmac-Sha256", good + "="}}, "{}").error,
            VerifyError::kInvalidSignature);
  EXPECT_EQ(verify(p, {{"X-Shopify-Hmac-Sha256", good}, {"X-Shopify-Topic", "t"}}, "{}").error,
            VerifyError::kInvalidEventId);
  EXPECT_EQ(verify(p, {{"X-Shopify-Hmac-Sha256", good}, {"X-Shopify-Event-Id", "e"}}, "{}").error,
            VerifyError::kInvalidPayload);
}

// Made by the official standardwebhooks and svix packages (tests/data/make_provider_fixtures.js):
// Svix's own names for the headers, the same scheme.
TEST(Standard, SdkFixtures) {
  for (const auto& [file, prefix] :
       {std::pair<std::string, std::string>{"standardwebhooks_sdk.txt", "webhook"},
        {"svix_sdk.txt", "svix"}}) {
    auto f = read_fixture(file);
    ASSERT_FALSE(f["signature"].empty()) << file;
    StandardProvider p(keys({standard_key_of(f["secret"])}), seconds(300));
    std::int64_t t = std::stoll(f["timestamp"]);
    std::vector<std::pair<std::string, std::string>> headers = {
        {prefix + "-id", f["id"]},
        {prefix + "-timestamp", f["timestamp"]},
        {prefix + "-signature", f["signature"]}};
    Verdict v = verify(p, headers, f["payload"], at(t + 300));
    EXPECT_EQ(v.error, VerifyError::kNone) << file << ": " << v.detail;
    EXPECT_EQ(v.event_id, f["id"]);
    EXPECT_EQ(v.event_type, "user.created");
    EXPECT_EQ(verify(p, headers, f["payload"], at(t + 301)).error, VerifyError::kStale) << file;
    EXPECT_EQ(verify(p, headers, f["payload"] + " ", at(t)).error, VerifyError::kInvalidSignature)
        << file;
  }
}

// Made by @shopify/shopify-api (tests/data/make_provider_fixtures.js).
TEST(Shopify, SdkFixture) {
  auto f = read_fixture("shopify_sdk.txt");
  ASSERT_FALSE(f["hmac"].empty());
  ShopifyProvider p(keys({f["secret"]}), "X-Shopify-Event-Id");
  Verdict v = verify(p,
                     {{"X-Shopify-Hmac-Sha256", f["hmac"]},
                      {"X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"},
                      {"X-Shopify-Topic", "orders/create"}},
                     f["payload"]);
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(verify(p,
                   {{"X-Shopify-Hmac-Sha256", f["hmac"]},
                    {"X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"},
                    {"X-Shopify-Topic", "orders/create"}},
                   f["payload"] + "\n")
                .error,
            VerifyError::kInvalidSignature);
}

}  // namespace
}  // namespace flare::providers
