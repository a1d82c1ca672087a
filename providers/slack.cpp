#include "providers/slack.hpp"

#include <charconv>

#include "providers/hmac.hpp"
#include "providers/json.hpp"

namespace flare::providers {
namespace {

// Slack's challenges are a few dozen characters; the answer echoes at most this many.
constexpr std::size_t kMaxChallenge = 1024;

std::string base_string(std::string_view timestamp, std::string_view body) {
  std::string base;
  base.reserve(4 + timestamp.size() + body.size());
  base.append("v0:").append(timestamp).append(":").append(body);
  return base;
}

}  // namespace

std::string slack_signature(std::string_view secret, std::string_view timestamp,
                            std::string_view body) {
  return "v0=" + to_hex(hmac_sha256(secret, base_string(timestamp, body)));
}

SlackProvider::SlackProvider(std::vector<config::Secret> secrets, std::chrono::seconds tolerance)
    : secrets_(std::move(secrets)), tolerance_(tolerance) {}

Verdict SlackProvider::verify(const InboundRequest& request,
                              std::chrono::system_clock::time_point now) const {
  std::optional<std::string_view> signature = request.headers.get("X-Slack-Signature");
  std::optional<std::string_view> timestamp = request.headers.get("X-Slack-Request-Timestamp");
  if (!signature || signature->empty() || !timestamp || timestamp->empty()) {
    return Verdict::reject(VerifyError::kMissingSignature,
                           "X-Slack-Signature and X-Slack-Request-Timestamp are required");
  }
  constexpr std::string_view kScheme = "v0=";
  std::optional<Digest> candidate;
  if (signature->substr(0, kScheme.size()) == kScheme) {
    candidate = digest_from_hex(signature->substr(kScheme.size()));
  }
  std::int64_t t = 0;
  const char* end = timestamp->data() + timestamp->size();
  auto [stop, ec] = std::from_chars(timestamp->data(), end, t);
  if (!candidate || ec != std::errc() || stop != end || t < 0) {
    return Verdict::reject(VerifyError::kInvalidSignature,
                           "X-Slack-Signature must be v0=<64 hex digits>, the timestamp Unix "
                           "seconds");
  }
  std::string base = base_string(*timestamp, request.body);
  bool match = false;
  for (const config::Secret& secret : secrets_) {
    if (secret.usable(now)) match |= constant_time_equal(hmac_sha256(secret.key, base), *candidate);
  }
  if (!match) {
    return Verdict::reject(VerifyError::kInvalidSignature, "the signature matches no secret");
  }
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (seconds - t > tolerance_.count() || t - seconds > tolerance_.count()) {
    return Verdict::reject(VerifyError::kStale, "the signature's timestamp is outside tolerance");
  }

  static const std::vector<JsonPointer> kFields = {
      {"event_id"}, {"event", "type"}, {"type"}, {"challenge"}};
  auto fields = json_strings(request.body, kFields);
  if (!fields) {
    // Interactions and slash commands are form-encoded: one delivery, one body.
    return Verdict::accept(to_hex(sha256(request.body)), "form");
  }
  std::optional<std::string>& event_id = (*fields)[0];
  std::optional<std::string>& event_type = (*fields)[1];
  std::optional<std::string>& type = (*fields)[2];
  std::optional<std::string>& challenge = (*fields)[3];
  if (type == "url_verification") {
    if (!challenge || challenge->empty() || challenge->size() > kMaxChallenge) {
      return Verdict::reject(VerifyError::kInvalidPayload,
                             "url_verification needs a string \"challenge\"");
    }
    Verdict answer;
    answer.challenge = std::move(*challenge);
    return answer;
  }
  std::optional<std::string>& kind = event_type && !event_type->empty() ? event_type : type;
  if (!kind || kind->empty()) {
    return Verdict::reject(VerifyError::kInvalidPayload,
                           "the body has no string \"type\" nor \"event\".\"type\"");
  }
  std::string id =
      event_id && !event_id->empty() ? std::move(*event_id) : to_hex(sha256(request.body));
  return Verdict::accept(std::move(id), std::move(*kind));
}

}  // namespace flare::providers
