#include "fuzz/targets.hpp"

#include <cstdio>
#include <cstdlib>

#include "providers/generic_hmac.hpp"
#include "providers/github.hpp"
#include "providers/hmac.hpp"
#include "providers/json.hpp"
#include "providers/shopify.hpp"
#include "providers/slack.hpp"
#include "providers/standard.hpp"
#include "providers/stripe.hpp"

namespace flare::fuzz {
namespace {

using providers::to_base64;
using providers::to_hex;

const std::string kSecret = "fuzz-secret";
const std::string kTime = std::to_string(kNow);

std::vector<config::Secret> secrets() {
  return {{"old-secret", std::chrono::system_clock::time_point(std::chrono::seconds(kNow - 1))},
          {kSecret, std::nullopt}};
}

std::string lines(std::initializer_list<std::string> parts) {
  std::string out;
  for (const std::string& p : parts) out.append(p).append("\n");
  out.pop_back();
  return out;
}

std::string base64_digest(const providers::Digest& d) { return to_base64(d); }

std::vector<Target> make_targets() {
  const std::string event = R"({"id":"evt_1","type":"invoice.paid","event_id":"Ev1","data":{}})";
  std::vector<Target> out;
  auto stripe_v1 = [&](const std::string& body) {
    return to_hex(providers::hmac_sha256(kSecret, kTime + "." + body));
  };
  out.push_back(
      {"stripe",
       {"Stripe-Signature"},
       std::make_unique<providers::StripeProvider>(secrets(), std::chrono::seconds(300)),
       {lines({"t=" + kTime + ",v1=" + stripe_v1(event), event}),
        lines({"t=" + kTime + ",v0=00,v1=" + std::string(64, 'a') + ",v1=" + stripe_v1(event),
               event})}});
  out.push_back({"github",
                 {"X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event"},
                 std::make_unique<providers::GithubProvider>(secrets()),
                 {lines({"sha256=" + to_hex(providers::hmac_sha256(kSecret, event)), "d-1", "push",
                         event})}});
  std::string key = kSecret;
  out.push_back(
      {"standard",
       {"webhook-id", "webhook-timestamp", "webhook-signature"},
       std::make_unique<providers::StandardProvider>(secrets(), std::chrono::seconds(300)),
       {lines({"msg_1", kTime,
               "v1a,xyz v1," + providers::standard_signature(key, "msg_1", kNow, event).substr(3),
               event})}});
  out.push_back({"shopify",
                 {"X-Shopify-Hmac-Sha256", "X-Shopify-Event-Id", "X-Shopify-Topic"},
                 std::make_unique<providers::ShopifyProvider>(secrets(), "X-Shopify-Event-Id"),
                 {lines({base64_digest(providers::hmac_sha256(kSecret, event)), "e-1",
                         "orders/create", event})}});
  std::string form = "command=%2Fweather&text=94070&user_id=U2147483697";
  std::string challenge = R"({"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV"})";
  out.push_back(
      {"slack",
       {"X-Slack-Signature", "X-Slack-Request-Timestamp"},
       std::make_unique<providers::SlackProvider>(secrets(), std::chrono::seconds(300)),
       {lines({providers::slack_signature(kSecret, kTime, event), kTime, event}),
        lines({providers::slack_signature(kSecret, kTime, form), kTime, form}),
        lines({providers::slack_signature(kSecret, kTime, challenge), kTime, challenge})}});
  config::Hmac scheme;
  scheme.header = "X-Signature";
  scheme.prefix = "sha512=";
  scheme.algorithm = config::Hmac::Algorithm::kSha512;
  scheme.encoding = config::Hmac::Encoding::kBase64;
  scheme.timestamp_header = "X-Timestamp";
  scheme.signed_content = config::parse_template("{timestamp}.{body}");
  scheme.id_pointer = "/id";
  scheme.type_pointer = "/type";
  std::string rfc3339 = "2023-11-14T22:13:20Z";  // kNow
  out.push_back(
      {"hmac",
       {"X-Signature", "X-Timestamp"},
       std::make_unique<providers::GenericHmacProvider>(scheme, secrets(),
                                                        std::chrono::seconds(300), "fuzz"),
       {lines({providers::hmac_signature(scheme, kSecret, kTime + "." + event), kTime, event}),
        lines(
            {providers::hmac_signature(scheme, kSecret, rfc3339 + "." + event), rfc3339, event})}});
  return out;
}

void check(bool ok, const Target& target, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz %s: %s\n", target.name.c_str(), what);
  std::abort();
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = make_targets();
  return all;
}

Run run(const Target& target, std::string_view input) {
  providers::Headers headers;
  for (const std::string& name : target.headers) {
    std::size_t end = input.find('\n');
    if (end == std::string_view::npos) break;
    headers.add(name, input.substr(0, end));
    input.remove_prefix(end + 1);
  }
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(kNow));
  providers::Verdict v = target.provider->verify({headers, input}, now);
  if (v.error == providers::VerifyError::kNone) {
    check(v.challenge || (!v.event_id.empty() && !v.event_type.empty()), target,
          "accepted without an event id and type");
  } else {
    check(!v.detail.empty() && v.event_id.empty() && !v.challenge, target,
          "rejected without a reason, or with an event");
  }
  return {std::move(v), input};
}

void run_json(std::string_view input) {
  static const std::vector<providers::JsonPointer> pointers = {
      {"id"}, {"event", "type"}, {"a", "0"}, {"~/"}, {}};
  auto found = providers::json_strings(input, pointers);
  if (found && found->size() != pointers.size()) std::abort();
  std::string_view text = input.substr(0, input.find('\n'));
  if (auto p = providers::parse_json_pointer(text); p && !text.empty() && text[0] != '/') {
    std::abort();
  }
}

}  // namespace flare::fuzz
