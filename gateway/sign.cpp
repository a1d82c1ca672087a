#include "gateway/sign.hpp"

#include <openssl/rand.h>

#include <stdexcept>

#include "providers/hmac.hpp"
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

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

SignedRequest sign(const config::Source& source, std::optional<std::string> body,
                   std::chrono::system_clock::time_point now) {
  SignedRequest out;
  const std::string& secret = source.secrets.front();
  out.headers.emplace_back("Content-Type", "application/json");
  if (source.provider == "stripe") {
    out.body = body ? *body
                    : R"({"id":"evt_)" + random_hex(12) +
                          R"(","object":"event","type":"payment_intent.succeeded","data":)"
                          R"({"object":{"id":"pi_sample","amount":2000,"currency":"usd"}}})";
    std::string t = std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
    out.headers.emplace_back(
        "Stripe-Signature",
        "t=" + t + ",v1=" + providers::to_hex(providers::hmac_sha256(secret, t + "." + out.body)));
  } else if (source.provider == "standard") {
    out.body =
        body ? *body : R"({"type":"user.created","data":{"id":"user_)" + random_hex(6) + R"("}})";
    std::int64_t t =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    std::string id = "msg_" + random_hex(12);
    out.headers.emplace_back("webhook-id", id);
    out.headers.emplace_back("webhook-timestamp", std::to_string(t));
    out.headers.emplace_back("webhook-signature",
                             providers::standard_signature(secret, id, t, out.body));
  } else if (source.provider == "shopify") {
    out.body = body ? *body : R"({"id":820982911946154508,"email":"jon@example.com"})";
    providers::Digest mac = providers::hmac_sha256(secret, out.body);
    out.headers.emplace_back("X-Shopify-Topic", "orders/create");
    out.headers.emplace_back(source.event_id_header, random_hex(4) + "-" + random_hex(2) + "-" +
                                                         random_hex(2) + "-" + random_hex(2) + "-" +
                                                         random_hex(6));
    out.headers.emplace_back(
        "X-Shopify-Hmac-Sha256",
        providers::to_base64(std::string_view(reinterpret_cast<const char*>(mac.data()), 32)));
  } else {
    out.body = body ? *body : R"({"zen":"Keep it logically awesome.","hook_id":1})";
    std::string delivery = random_hex(4) + "-" + random_hex(2) + "-" + random_hex(2) + "-" +
                           random_hex(2) + "-" + random_hex(6);
    out.headers.emplace_back("X-GitHub-Event", "ping");
    out.headers.emplace_back("X-GitHub-Delivery", delivery);
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
