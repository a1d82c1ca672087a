#include "gateway/ingest.hpp"

namespace flare::gateway {
namespace {

constexpr std::size_t kMaxKeyCharacters = 200;
constexpr std::size_t kMaxTypeCharacters = 200;
constexpr std::size_t kMaxContentType = 200;

// Counts code points; nullopt for invalid UTF-8 or any control character.
std::optional<std::size_t> printable_utf8_length(std::string_view s) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return std::nullopt;
    }
    if (i + extra >= s.size()) return std::nullopt;
    for (std::size_t k = 1; k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return std::nullopt;
      cp = cp << 6 | (cc & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return std::nullopt;
    i += extra + 1;
    ++count;
  }
  return count;
}

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
  if (!length || *length > kMaxKeyCharacters) return std::nullopt;
  return key;
}

Ingest ingest(const Source& source, const providers::Headers& headers, std::string body,
              std::chrono::system_clock::time_point now) {
  providers::Verdict verdict = source.provider->verify({headers, body}, now);
  if (verdict.error != providers::VerifyError::kNone) {
    return {outcome_of(verdict.error), verdict.detail, {}};
  }
  std::optional<std::string> key = derive_key(*source.config, verdict.event_id);
  if (!key) {
    return {Outcome::kInvalidEventId,
            "the event id is empty, not printable UTF-8, or makes a key over 200 characters",
            {}};
  }
  const config::Source& cfg = *source.config;
  std::string type = cfg.job_type.empty() ? cfg.provider + "." + verdict.event_type : cfg.job_type;
  std::optional<std::size_t> type_length = printable_utf8_length(type);
  if (!type_length || *type_length > kMaxTypeCharacters) {
    return {
        Outcome::kInvalidPayload, "the event type is not printable UTF-8 of 200 characters", {}};
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
  return {Outcome::kEnqueue, {}, std::move(job)};
}

}  // namespace flare::gateway
