#include "gateway/ingest.hpp"

#include "gateway/text.hpp"

namespace flare::gateway {
namespace {

constexpr std::size_t kMaxContentType = 200;

Outcome outcome_of(providers::VerifyError e) {
  switch (e) {
    case providers::VerifyError::kNone:
      return Outcome::kEnqueue;
    case providers::VerifyError::kMissingSignature:
      return Outcome::kMissingSignature;
    case providers::VerifyError::kInvalidSignature:
      return Outcome::kInvalidSignature;
    case providers::VerifyError::kStale:
      return Outcome::kStale;
    case providers::VerifyError::kInvalidEventId:
      return Outcome::kInvalidEventId;
    case providers::VerifyError::kInvalidPayload:
      return Outcome::kInvalidPayload;
  }
  return Outcome::kInternal;
}

// Stored verbatim beside the payload, so it must be safe text of reasonable size.
std::string content_type_of(const providers::Headers& headers) {
  std::optional<std::string_view> value = headers.get("Content-Type");
  if (!value || value->empty() || value->size() > kMaxContentType) {
    return "application/octet-stream";
  }
  for (char c : *value) {
    if (c < 0x20 || c > 0x7e) return "application/octet-stream";
  }
  return std::string(*value);
}

}  // namespace

std::optional<std::string> derive_key(const config::Source& source, std::string_view event_id) {
  if (event_id.empty() || !printable_utf8_length(event_id)) return std::nullopt;
  std::string key;
  const std::string& tmpl = source.key_template;
  key.reserve(tmpl.size() + event_id.size() + source.name.size() + source.provider.size());
  for (std::size_t i = 0; i < tmpl.size();) {
    if (tmpl[i] != '{') {
      key += tmpl[i++];
      continue;
    }
    std::size_t close = tmpl.find('}', i);
    std::string_view name = std::string_view(tmpl).substr(i + 1, close - i - 1);
    if (name == "event_id") key += event_id;
    if (name == "source") key += source.name;
    if (name == "provider") key += source.provider;
    i = close + 1;
  }
  std::optional<std::size_t> length = printable_utf8_length(key);
  if (!length || *length > kMaxKeyLength) return std::nullopt;
  return key;
}

Ingest ingest(const Source& source, const providers::Headers& headers, std::string body,
              std::chrono::system_clock::time_point now) {
  providers::Verdict verdict = source.provider->verify({headers, body}, now);
  if (verdict.error != providers::VerifyError::kNone) {
    return {outcome_of(verdict.error), verdict.detail, {}, {}};
  }
  if (verdict.challenge) return {Outcome::kChallenge, {}, {}, std::move(*verdict.challenge)};
  std::optional<std::string> key = derive_key(*source.config, verdict.event_id);
  if (!key) {
    return {Outcome::kInvalidEventId,
            "the event id is empty, not printable UTF-8, or makes a key over 200 characters",
            {},
            {}};
  }
  const config::Source& cfg = *source.config;
  std::string type = cfg.job_type.empty() ? cfg.provider + "." + verdict.event_type : cfg.job_type;
  std::optional<std::size_t> type_length = printable_utf8_length(type);
  if (!type_length || *type_length > kMaxTypeLength) {
    return {Outcome::kInvalidPayload,
            "the event type is not printable UTF-8 of 200 characters",
            {},
            {}};
  }
  jobs::NewJob job;
  job.project_id = cfg.project;
  job.idempotency_key = std::move(*key);
  job.type = std::move(type);
  job.content_type = content_type_of(headers);
  job.payload = std::move(body);
  job.source = cfg.name;
  job.event_id = std::move(verdict.event_id);
  job.max_attempts = cfg.retry.max_attempts;
  return {Outcome::kEnqueue, {}, std::move(job), {}};
}

}  // namespace flare::gateway
