#include "providers/github.hpp"

#include "providers/hmac.hpp"

namespace flare::providers {

GithubProvider::GithubProvider(std::vector<config::Secret> secrets)
    : secrets_(std::move(secrets)) {}

Verdict GithubProvider::verify(const InboundRequest& request,
                               std::chrono::system_clock::time_point now) const {
  std::optional<std::string_view> header = request.headers.get("X-Hub-Signature-256");
  if (!header || header->empty()) {
    return Verdict::reject(VerifyError::kMissingSignature, "X-Hub-Signature-256 header is missing");
  }
  constexpr std::string_view kPrefix = "sha256=";
  std::optional<Digest> candidate;
  if (header->substr(0, kPrefix.size()) == kPrefix) {
    candidate = digest_from_hex(header->substr(kPrefix.size()));
  }
  if (!candidate) {
    return Verdict::reject(VerifyError::kInvalidSignature,
                           "X-Hub-Signature-256 must be sha256=<64 hex digits>");
  }
  bool match = false;
  for (const config::Secret& secret : secrets_) {
    if (secret.usable(now))
      match |= constant_time_equal(hmac_sha256(secret.key, request.body), *candidate);
  }
  if (!match)
    return Verdict::reject(VerifyError::kInvalidSignature, "the signature matches no secret");

  std::optional<std::string_view> delivery = request.headers.get("X-GitHub-Delivery");
  if (!delivery || delivery->empty()) {
    return Verdict::reject(VerifyError::kInvalidEventId, "X-GitHub-Delivery header is missing");
  }
  std::optional<std::string_view> event = request.headers.get("X-GitHub-Event");
  if (!event || event->empty()) {
    return Verdict::reject(VerifyError::kInvalidPayload, "X-GitHub-Event header is missing");
  }
  return Verdict::accept(std::string(*delivery), std::string(*event));
}

}  // namespace flare::providers
