// Slack, the YAML-described HMAC provider, and secrets with an end date for every provider.
#include <gtest/gtest.h>

#include <thread>

#include "providers/generic_hmac.hpp"
#include "providers/github.hpp"
#include "providers/hmac.hpp"
#include "providers/shopify.hpp"
#include "providers/slack.hpp"
#include "providers/standard.hpp"
#include "providers/stripe.hpp"
#include "text/text.hpp"

namespace flare::providers {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::system_clock;
using Fields = std::vector<std::pair<std::string, std::string>>;

Clock::time_point at(std::int64_t unix_seconds) { return Clock::time_point(seconds(unix_seconds)); }

Verdict verify(const Provider& p, const Fields& fields, const std::string& body,
               Clock::time_point now) {
  Headers headers;
  for (const auto& [name, value] : fields) headers.add(name, value);
  return p.verify(InboundRequest{headers, body}, now);
}

std::vector<config::Secret> keys(std::initializer_list<std::string> values) {
  std::vector<config::Secret> out;
  for (const std::string& v : values) out.push_back({v, std::nullopt});
  return out;
}

// Slack's documented example ("Verifying requests from Slack"): a slash command, form-encoded.
const std::string kSlackSecret = "8f742231b10e8888abcd99yyyzzz85a5";
const std::string kSlackBody =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c";
const std::string kSlackSignature =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

TEST(Slack, DocumentedVector) {
  EXPECT_EQ(slack_signature(kSlackSecret, "1531420618", kSlackBody), kSlackSignature);
  SlackProvider slack(keys({"other", kSlackSecret}), seconds(300));
  Verdict v = verify(
      slack, {{"X-Slack-Signature", kSlackSignature}, {"X-Slack-Request-Timestamp", "1531420618"}},
      kSlackBody, at(1531420618 + 300));
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  // Not JSON: identified by the body's digest, which a retry repeats.
  EXPECT_EQ(v.event_id, to_hex(sha256(kSlackBody)));
  EXPECT_EQ(v.event_type, "form");
  EXPECT_FALSE(v.challenge);
  EXPECT_EQ(
      verify(slack,
             {{"X-Slack-Signature", kSlackSignature}, {"X-Slack-Request-Timestamp", "1531420618"}},
             kSlackBody, at(1531420618 + 301))
          .error,
      VerifyError::kStale);
  EXPECT_EQ(
      verify(slack,
             {{"X-Slack-Signature", kSlackSignature}, {"X-Slack-Request-Timestamp", "1531420618"}},
             kSlackBody, at(1531420618 - 301))
          .error,
      VerifyError::kStale);
}

Verdict slack_event(const std::string& body, std::int64_t now = 1700000000) {
  SlackProvider slack(keys({"s3cret"}), seconds(300));
  std::string t = std::to_string(now);
  return verify(
      slack,
      {{"X-Slack-Signature", slack_signature("s3cret", t, body)}, {"X-Slack-Request-Timestamp", t}},
      body, at(now));
}

TEST(Slack, EventsApiIdAndType) {
  Verdict v = slack_event(
      R"({"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}})");
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, "Ev08MFMKH6");
  EXPECT_EQ(v.event_type, "app_mention");
  // No event_id: the body's digest; no event.type: the top-level type.
  std::string body = R"({"type":"app_rate_limited","team_id":"T1"})";
  v = slack_event(body);
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, to_hex(sha256(body)));
  EXPECT_EQ(v.event_type, "app_rate_limited");
  EXPECT_EQ(slack_event(R"({"event_id":"Ev1"})").error, VerifyError::kInvalidPayload);
}

TEST(Slack, UrlVerificationIsAnsweredNotStored) {
  Verdict v = slack_event(
      R"({"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"})");
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.challenge, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
  EXPECT_EQ(slack_event(R"({"type":"url_verification"})").error, VerifyError::kInvalidPayload);
  EXPECT_EQ(
      slack_event(R"({"type":"url_verification","challenge":")" + std::string(1025, 'c') + "\"}")
          .error,
      VerifyError::kInvalidPayload);
  // Unsigned, the challenge is refused like anything else.
  SlackProvider slack(keys({"s3cret"}), seconds(300));
  EXPECT_EQ(verify(slack,
                   {{"X-Slack-Signature", "v0=" + std::string(64, '0')},
                    {"X-Slack-Request-Timestamp", "1700000000"}},
                   R"({"type":"url_verification","challenge":"x"})", at(1700000000))
                .error,
            VerifyError::kInvalidSignature);
}

TEST(Slack, MalformedHeaders) {
  SlackProvider slack(keys({"s3cret"}), seconds(300));
  std::string good = slack_signature("s3cret", "1700000000", "{}");
  auto with = [&](const Fields& f) { return verify(slack, f, "{}", at(1700000000)).error; };
  EXPECT_EQ(with({}), VerifyError::kMissingSignature);
  EXPECT_EQ(with({{"X-Slack-Signature", good}}), VerifyError::kMissingSignature);
  EXPECT_EQ(with({{"X-Slack-Request-Timestamp", "1700000000"}}), VerifyError::kMissingSignature);
  for (const std::string& bad : {good.substr(3), "v1=" + good.substr(3), good + "0",
                                 good.substr(0, 66), std::string("v0=")}) {
    EXPECT_EQ(with({{"X-Slack-Signature", bad}, {"X-Slack-Request-Timestamp", "1700000000"}}),
              VerifyError::kInvalidSignature)
        << bad;
  }
  for (const char* t : {"1700000000.5", "-1700000000", "17e8", " 1700000000", "x"}) {
    EXPECT_EQ(with({{"X-Slack-Signature", good}, {"X-Slack-Request-Timestamp", t}}),
              VerifyError::kInvalidSignature)
        << t;
  }
}

config::Hmac scheme(std::function<void(config::Hmac&)> edit) {
  config::Hmac s;
  s.header = "X-Signature";
  s.id_header = "X-Event-Id";
  edit(s);
  return s;
}

// GitHub described as a generic scheme verifies GitHub's documented example.
TEST(GenericHmac, GithubDescribedInYamlVerifiesItsVector) {
  GenericHmacProvider p(scheme([](config::Hmac& s) {
                          s.header = "X-Hub-Signature-256";
                          s.prefix = "sha256=";
                          s.id_header = "X-GitHub-Delivery";
                          s.type_header = "X-GitHub-Event";
                        }),
                        keys({"It's a Secret to Everybody"}), seconds(300), "gh");
  Verdict v = verify(p,
                     {{"X-Hub-Signature-256",
                       "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
                      {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
                      {"X-GitHub-Event", "push"}},
                     "Hello, World!", at(0));
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  EXPECT_EQ(v.event_type, "push");
}

// Each thread keeps one HMAC context per digest and re-keys it on every call: alternating keys,
// an empty key and a second thread all get the published values (RFC 4231 cases 1 and 2; the
// empty key and message as computed by every HMAC-SHA256 implementation).
TEST(Hmac, EveryCallUsesItsOwnKey) {
  const std::string case1_key(20, '\x0b');
  auto check = [&] {
    for (int round = 0; round < 2; ++round) {
      EXPECT_EQ(to_hex(hmac_sha256(case1_key, "Hi There")),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
      EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
      EXPECT_EQ(to_hex(hmac_sha256(std::string_view(), std::string_view())),
                "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    }
  };
  check();
  std::thread other(check);
  other.join();
}

// RFC 2202 and RFC 4231 test case 2 through each algorithm and encoding.
TEST(GenericHmac, AlgorithmsAndEncodings) {
  using A = config::Hmac::Algorithm;
  EXPECT_EQ(text::to_hex(hmac_bytes(A::kSha1, "Jefe", "what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(text::to_hex(hmac_bytes(A::kSha512, "Jefe", "what do ya want for nothing?")),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f"
            "65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
  const std::string body = "what do ya want for nothing?";
  for (A algorithm : {A::kSha1, A::kSha256, A::kSha512}) {
    for (auto encoding : {config::Hmac::Encoding::kHex, config::Hmac::Encoding::kBase64}) {
      config::Hmac s = scheme([&](config::Hmac& x) {
        x.algorithm = algorithm;
        x.encoding = encoding;
      });
      GenericHmacProvider p(s, keys({"Jefe"}), seconds(300), "src");
      std::string raw = hmac_bytes(algorithm, "Jefe", body);
      std::string good =
          encoding == config::Hmac::Encoding::kHex ? text::to_hex(raw) : text::to_base64(raw);
      EXPECT_EQ(hmac_signature(s, "Jefe", body), good);
      Verdict v = verify(p, {{"X-Signature", good}, {"X-Event-Id", "e1"}}, body, at(0));
      EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
      EXPECT_EQ(v.event_type, "src");  // no type configured: the source's name
      // One algorithm's MAC is not another's.
      A other = algorithm == A::kSha256 ? A::kSha1 : A::kSha256;
      std::string wrong = hmac_bytes(other, "Jefe", body);
      EXPECT_EQ(verify(p,
                       {{"X-Signature", encoding == config::Hmac::Encoding::kHex
                                            ? text::to_hex(wrong)
                                            : text::to_base64(wrong)},
                        {"X-Event-Id", "e1"}},
                       body, at(0))
                    .error,
                VerifyError::kInvalidSignature);
    }
  }
}

TEST(GenericHmac, TemplateTimestampHeadersAndPointers) {
  config::Hmac s = scheme([](config::Hmac& x) {
    x.encoding = config::Hmac::Encoding::kBase64;
    x.signed_content = config::parse_template("{timestamp}:{header:X-Account}:{body}");
    x.timestamp_header = "X-Timestamp";
    x.id_header.clear();
    x.id_pointer = "/event/id";
    x.type_pointer = "/event/type";
  });
  GenericHmacProvider p(s, keys({"k"}), seconds(60), "src");
  std::string body = R"({"event":{"id":"ev_9","type":"ticket.created"}})";
  std::string sig = hmac_signature(s, "k", "1700000000:acct_1:" + body);
  Fields good = {{"X-Signature", sig}, {"X-Timestamp", "1700000000"}, {"X-Account", "acct_1"}};
  Verdict v = verify(p, good, body, at(1700000060));
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, "ev_9");
  EXPECT_EQ(v.event_type, "ticket.created");
  EXPECT_EQ(verify(p, good, body, at(1700000061)).error, VerifyError::kStale);
  EXPECT_EQ(verify(p, good, body, at(1699999939)).error, VerifyError::kStale);
  // Every signed header takes part: change one and the signature fails.
  Fields other_account = good;
  other_account[2].second = "acct_2";
  EXPECT_EQ(verify(p, other_account, body, at(1700000000)).error, VerifyError::kInvalidSignature);
  Fields no_account(good.begin(), good.begin() + 2);
  EXPECT_EQ(verify(p, no_account, body, at(1700000000)).error, VerifyError::kMissingSignature);
  Fields no_time = {good[0], good[2]};
  EXPECT_EQ(verify(p, no_time, body, at(1700000000)).error, VerifyError::kMissingSignature);
  // Signed, but the body is not JSON, or has no id or type where the pointers say.
  auto signed_body = [&](const std::string& b) {
    return verify(p,
                  {{"X-Signature", hmac_signature(s, "k", "1700000000:acct_1:" + b)},
                   {"X-Timestamp", "1700000000"},
                   {"X-Account", "acct_1"}},
                  b, at(1700000000))
        .error;
  };
  EXPECT_EQ(signed_body("not json"), VerifyError::kInvalidPayload);
  EXPECT_EQ(signed_body(R"({"event":{"type":"t"}})"), VerifyError::kInvalidEventId);
  EXPECT_EQ(signed_body(R"({"event":{"id":7,"type":"t"}})"), VerifyError::kInvalidEventId);
  EXPECT_EQ(signed_body(R"({"event":{"id":"e"}})"), VerifyError::kInvalidPayload);
}

// Zendesk's published example (event connectors: body, then an RFC 3339 timestamp).
TEST(GenericHmac, ZendeskPublishedExample) {
  config::Hmac s = scheme([](config::Hmac& x) {
    x.header = "X-Zendesk-Webhook-Signature";
    x.encoding = config::Hmac::Encoding::kBase64;
    x.timestamp_header = "X-Zendesk-Webhook-Signature-Timestamp";
    x.signed_content = config::parse_template("{body}{timestamp}");
    x.id_header = "X-Zendesk-Webhook-Invocation-Id";
  });
  GenericHmacProvider p(s, keys({"HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA="}), seconds(300),
                        "zendesk");
  Fields fields = {{"X-Zendesk-Webhook-Signature", "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw="},
                   {"X-Zendesk-Webhook-Signature-Timestamp", "2021-07-25T10:00:00Z"},
                   {"X-Zendesk-Webhook-Invocation-Id", "8350205582"}};
  Clock::time_point then = at(1627207200);  // 2021-07-25T10:00:00Z
  Verdict v = verify(p, fields, R"({"say": "hello"})", then + seconds(300));
  EXPECT_EQ(v.error, VerifyError::kNone) << v.detail;
  EXPECT_EQ(v.event_id, "8350205582");
  EXPECT_EQ(verify(p, fields, R"({"say": "hello"})", then + seconds(301)).error,
            VerifyError::kStale);
  EXPECT_EQ(verify(p, fields, R"({"say": "hello!"})", then).error, VerifyError::kInvalidSignature);
  fields[1].second = "25 July 2021";
  EXPECT_EQ(verify(p, fields, R"({"say": "hello"})", then).error, VerifyError::kInvalidSignature);
}

TEST(GenericHmac, PrefixIdTemplateAndMalformedSignatures) {
  config::Hmac s = scheme([](config::Hmac& x) {
    x.prefix = "sha256=";
    x.signed_content = config::parse_template("{id}.{body}");
  });
  GenericHmacProvider p(s, keys({"k"}), seconds(300), "src");
  std::string good = hmac_signature(s, "k", "e1.{}");
  auto with = [&](const Fields& f) { return verify(p, f, "{}", at(0)).error; };
  EXPECT_EQ(with({{"X-Signature", good}, {"X-Event-Id", "e1"}}), VerifyError::kNone);
  EXPECT_EQ(with({{"X-Signature", good}, {"X-Event-Id", "e2"}}), VerifyError::kInvalidSignature);
  EXPECT_EQ(with({{"X-Signature", good}}), VerifyError::kMissingSignature);
  EXPECT_EQ(with({{"X-Event-Id", "e1"}}), VerifyError::kMissingSignature);
  std::string hex = good.substr(7);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_EQ(with({{"X-Signature", "sha256=" + upper}, {"X-Event-Id", "e1"}}), VerifyError::kNone);
  for (const std::string& bad : {hex, "sha1=" + hex, "SHA256=" + hex, good + "0", good + "00",
                                 good.substr(0, good.size() - 2), "sha256=" + std::string(64, 'g'),
                                 "sha256=" + std::string(5000, '0')}) {
    EXPECT_EQ(with({{"X-Signature", bad}, {"X-Event-Id", "e1"}}), VerifyError::kInvalidSignature)
        << bad.substr(0, 80);
  }
}

// During a rotation the old secret keeps working until its not_after, and not a second longer.
TEST(Rotation, NotAfterEndsASecretInEveryProvider) {
  const Clock::time_point cutoff = at(1700000000);
  std::vector<config::Secret> secrets = {{"new-secret", std::nullopt}, {"old-secret", cutoff}};
  std::vector<config::Secret> standard_keys = {{"new-key", std::nullopt}, {"old-key", cutoff}};
  std::string body = R"({"id":"evt_1","type":"t","event_id":"Ev1"})";
  struct Case {
    std::string name;
    std::unique_ptr<Provider> provider;
    std::function<Fields(std::int64_t)> signed_with_old;
  };
  config::Hmac plain = scheme([](config::Hmac&) {});
  std::vector<Case> cases;
  cases.push_back(
      {"stripe", std::make_unique<StripeProvider>(secrets, seconds(86400)), [&](std::int64_t now) {
         std::string t = std::to_string(now);
         return Fields{{"Stripe-Signature",
                        "t=" + t + ",v1=" + to_hex(hmac_sha256("old-secret", t + "." + body))}};
       }});
  cases.push_back(
      {"github", std::make_unique<GithubProvider>(secrets), [&](std::int64_t) {
         return Fields{{"X-Hub-Signature-256", "sha256=" + to_hex(hmac_sha256("old-secret", body))},
                       {"X-GitHub-Delivery", "d1"},
                       {"X-GitHub-Event", "push"}};
       }});
  cases.push_back({"standard", std::make_unique<StandardProvider>(standard_keys, seconds(86400)),
                   [&](std::int64_t now) {
                     return Fields{
                         {"webhook-id", "msg_1"},
                         {"webhook-timestamp", std::to_string(now)},
                         {"webhook-signature", standard_signature("old-key", "msg_1", now, body)}};
                   }});
  cases.push_back({"shopify", std::make_unique<ShopifyProvider>(secrets, "X-Shopify-Event-Id"),
                   [&](std::int64_t) {
                     Digest mac = hmac_sha256("old-secret", body);
                     return Fields{{"X-Shopify-Hmac-Sha256", to_base64(mac)},
                                   {"X-Shopify-Event-Id", "e1"},
                                   {"X-Shopify-Topic", "orders/create"}};
                   }});
  cases.push_back(
      {"slack", std::make_unique<SlackProvider>(secrets, seconds(86400)), [&](std::int64_t now) {
         std::string t = std::to_string(now);
         return Fields{{"X-Slack-Signature", slack_signature("old-secret", t, body)},
                       {"X-Slack-Request-Timestamp", t}};
       }});
  cases.push_back({"hmac", std::make_unique<GenericHmacProvider>(plain, secrets, seconds(300), "h"),
                   [&](std::int64_t) {
                     return Fields{{"X-Signature", hmac_signature(plain, "old-secret", body)},
                                   {"X-Event-Id", "e1"}};
                   }});
  for (const Case& c : cases) {
    for (std::int64_t now : {1699999000LL, 1700000000LL}) {
      EXPECT_EQ(verify(*c.provider, c.signed_with_old(now), body, at(now)).error,
                VerifyError::kNone)
          << c.name << " at " << now;
    }
    Clock::time_point after = cutoff + std::chrono::microseconds(1);
    EXPECT_EQ(verify(*c.provider, c.signed_with_old(1700000001), body, after).error,
              VerifyError::kInvalidSignature)
        << c.name;
  }
}

}  // namespace
}  // namespace flare::providers
