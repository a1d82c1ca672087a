#include "gateway/sign.hpp"

#include <openssl/rand.h>

#include <stdexcept>

#include "providers/generic_hmac.hpp"
#include "providers/hmac.hpp"
#include "providers/slack.hpp"
#include "providers/standard.hpp"

namespace flare::gateway {
namespace {

std::string random_hex(std::size_t bytes) {
  providers::Digest raw{};
  if (bytes > raw.size() || RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no random bytes");
  }
  return providers::to_hex(raw).substr(0, bytes * 2);
}

std::string uuid_like() {
  return random_hex(4) + "-" + random_hex(2) + "-" + random_hex(2) + "-" + random_hex(2) + "-" +
         random_hex(6);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

SignedRequest sign(const config::Source& source, std::optional<std::string> body,
                   std::chrono::system_clock::time_point now) {
  SignedRequest out;
  const config::Secret* usable = &source.secrets.front();
  for (const config::Secret& s : source.secrets) {
    if (s.usable(now)) {
      usable = &s;
      break;
    }
  }
  const std::string& secret = usable->key;
  std::string t = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  out.headers.emplace_back("Content-Type", "application/json");
  if (source.provider == "stripe") {
    out.body = body ? *body
                    : R"({"id":"evt_)" + random_hex(12) +
                          R"(","object":"event","type":"payment_intent.succeeded","data":)"
                          R"({"object":{"id":"pi_sample","amount":2000,"currency":"usd"}}})";
    out.headers.emplace_back(
        "Stripe-Signature",
        "t=" + t + ",v1=" + providers::to_hex(providers::hmac_sha256(secret, t + "." + out.body)));
  } else if (source.provider == "standard") {
    out.body =
        body ? *body : R"({"type":"user.created","data":{"id":"user_)" + random_hex(6) + R"("}})";
    std::string id = "msg_" + random_hex(12);
    out.headers.emplace_back("webhook-id", id);
    out.headers.emplace_back("webhook-timestamp", t);
    out.headers.emplace_back("webhook-signature",
                             providers::standard_signature(secret, id, std::stoll(t), out.body));
  } else if (source.provider == "shopify") {
    out.body = body ? *body : R"({"id":820982911946154508,"email":"jon@example.com"})";
    providers::Digest mac = providers::hmac_sha256(secret, out.body);
    out.headers.emplace_back("X-Shopify-Topic", "orders/create");
    out.headers.emplace_back(source.event_id_header, uuid_like());
    out.headers.emplace_back("X-Shopify-Hmac-Sha256", providers::to_base64(mac));
  } else if (source.provider == "slack") {
    out.body = body ? *body
                    : R"({"type":"event_callback","event_id":"Ev)" + random_hex(5) +
                          R"(","event":{"type":"app_mention","text":"hello"}})";
    out.headers.emplace_back("X-Slack-Request-Timestamp", t);
    out.headers.emplace_back("X-Slack-Signature", providers::slack_signature(secret, t, out.body));
  } else if (source.provider == "hmac") {
    const config::Hmac& scheme = *source.hmac;
    std::string id = "evt_" + random_hex(12);
    out.body = body ? *body : R"({"id":")" + id + R"(","type":"sample.event"})";
    // Every header the scheme reads, so that the sample verifies; pointers read the body.
    if (!scheme.timestamp_header.empty()) out.headers.emplace_back(scheme.timestamp_header, t);
    if (!scheme.id_header.empty()) out.headers.emplace_back(scheme.id_header, id);
    if (!scheme.type_header.empty()) out.headers.emplace_back(scheme.type_header, "sample.event");
    for (const config::Template::Part& part : scheme.signed_content.parts) {
      if (part.slot == config::Template::Slot::kHeader)
        out.headers.emplace_back(part.text, "sample");
    }
    providers::Headers view;
    for (const auto& [name, value] : out.headers) view.add(name, value);
    std::string content = *providers::hmac_signed_content(scheme, view, out.body);
    out.headers.emplace_back(scheme.header, providers::hmac_signature(scheme, secret, content));
  } else {
    out.body = body ? *body : R"({"zen":"Keep it logically awesome.","hook_id":1})";
    out.headers.emplace_back("X-GitHub-Event", "ping");
    out.headers.emplace_back("X-GitHub-Delivery", uuid_like());
    out.headers.emplace_back(
        "X-Hub-Signature-256",
        "sha256=" + providers::to_hex(providers::hmac_sha256(secret, out.body)));
  }
  return out;
}

std::string curl_command(const config::Config& config, const config::Source& source,
                         const SignedRequest& request) {
  std::string host = config.server.host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::string url = std::string(config.server.tls ? "https" : "http") + "://" + host + ":" +
                    std::to_string(config.server.port) + "/webhooks/" + source.name;
  std::string cmd = "curl -sS -X POST " + shell_quote(url);
  for (const auto& [name, value] : request.headers)
    cmd += " -H " + shell_quote(name + ": " + value);
  return cmd + " --data-binary " + shell_quote(request.body);
}

}  // namespace flare::gateway
