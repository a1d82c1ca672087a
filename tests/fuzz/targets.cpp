#include "fuzz/targets.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>

#include "config/config.hpp"
#include "gateway/dispatch.hpp"
#include "gateway/origin.hpp"
#include "gateway/reply.hpp"
#include "providers/generic_hmac.hpp"
#include "providers/github.hpp"
#include "providers/hmac.hpp"
#include "providers/json.hpp"
#include "providers/shopify.hpp"
#include "providers/slack.hpp"
#include "providers/standard.hpp"
#include "providers/stripe.hpp"
#include "text/text.hpp"

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

namespace {

void require(bool ok, const char* target, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz %s: %s\n", target, what);
  std::abort();
}

// The next line of `input` (all of it when no newline is left).
std::string_view take_line(std::string_view& input) {
  std::size_t end = input.find('\n');
  std::string_view line = input.substr(0, end);
  input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
  return line;
}

bool is_address(const std::string& text) {
  unsigned char bytes[16];
  return inet_pton(AF_INET, text.c_str(), bytes) == 1 ||
         inet_pton(AF_INET6, text.c_str(), bytes) == 1;
}

}  // namespace

void run_head(std::string_view input) {
  static const config::Source stripe = [] {
    config::Source source;
    source.name = "stripe";
    source.provider = "stripe";
    source.secrets = {{kSecret, std::nullopt}};
    return source;
  }();
  static const gateway::Sources sources = [] {
    gateway::Sources out;
    out.emplace("stripe", gateway::Source{&stripe, providers::make_provider(stripe)});
    return out;
  }();
  static const std::vector<config::Cidr> proxies = [] {
    config::Cidr local;
    local.bytes = {127, 0, 0, 1};
    local.prefix = 8;
    return std::vector<config::Cidr>{local};
  }();
  std::string_view method = take_line(input);
  std::string_view target = take_line(input);
  std::string_view base = take_line(input);
  providers::Headers headers;
  for (const char* name : {"X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id"}) {
    headers.add(name, take_line(input));
  }

  gateway::Dispatch r = gateway::dispatch(method, target, base, sources, true);
  using Kind = gateway::Dispatch::Kind;
  require(r.kind != Kind::kWebhook || (r.source != nullptr && method == "POST"), "head",
          "a webhook route without its source, or not a POST");
  require(r.source == nullptr || r.webhook_path, "head", "a source outside /webhooks/");
  using gateway::Endpoint;
  bool by_id = r.api.endpoint != Endpoint::kCreate && r.api.endpoint != Endpoint::kList &&
               r.api.endpoint != Endpoint::kClaim && r.api.endpoint != Endpoint::kRoutes &&
               r.api.endpoint != Endpoint::kPauseRoute &&
               r.api.endpoint != Endpoint::kResumeRoute && r.api.endpoint != Endpoint::kReplay;
  require(r.kind != Kind::kApi || !by_id || text::is_uuid(r.api.id), "head",
          "an API path to a job or replay that is no UUID");
  require((r.kind != Kind::kReply && r.kind != Kind::kApiReply) ||
              gateway::http_status(r.reply.outcome) >= 400,
          "head", "an immediate answer that is no error");

  gateway::Origin o = gateway::origin_of(proxies, "127.0.0.1", false, "gen-1", &headers);
  require(o.proto == "http" || o.proto == "https", "head", "a protocol of the client's making");
  require(o.request_id == "gen-1" || gateway::valid_request_id(o.request_id), "head",
          "a request id that is neither ours nor valid");
  require(o.client == "127.0.0.1" || is_address(o.client), "head", "a client that is no address");

  gateway::Reply reply = r.kind == Kind::kReply || r.kind == Kind::kApiReply
                             ? std::move(r.reply)
                             : gateway::status(gateway::Outcome::kHealthy);
  std::string bytes;
  gateway::render(reply, {false, true, o.request_id}, bytes);
  std::size_t end = bytes.find("\r\n\r\n");
  require(end != std::string::npos, "head", "a response without the end of its header");
  for (std::size_t i = 0; i < end; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    bool line_end = c == '\r' && bytes[i + 1] == '\n';
    if (line_end) ++i;
    require(line_end || (c >= 0x20 && c < 0x7f), "head", "a control character in the header");
  }
}

void run_config(std::string_view input) {
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "UNSET") return std::nullopt;
    return "x";
  };
  try {
    config::parse(input, "fuzz.yaml", env);
  } catch (const config::Error& e) {
    require(e.what()[0] != '\0', "config", "an error without a message");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz config: %s\n", e.what());
    require(false, "config", "an exception other than config::Error");
  }
}

}  // namespace flare::fuzz
