#include "gateway/ingest.hpp"

#include "text/text.hpp"

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

Sources make_sources(const config::Config& config) {
  Sources out;
  for (const config::Source& s : config.sources) {
    out.emplace(s.name, Source{&s, providers::make_provider(s)});
  }
  return out;
}

Reply webhook_reply(const jobs::Result& result) {
  if (result.outcome != jobs::Outcome::kCreated && result.outcome != jobs::Outcome::kDuplicate) {
    return store_failure(result.outcome);
  }
  return status(
      result.outcome == jobs::Outcome::kCreated ? Outcome::kAccepted : Outcome::kDuplicate,
      {{"job_id", result.stored.job_id}, {"idempotency_key", result.job.idempotency_key}});
}

std::optional<std::string> derive_key(const config::Source& source, std::string_view event_id) {
  if (event_id.empty() || !text::printable_utf8_length(event_id)) return std::nullopt;
  using Slot = config::Template::Slot;
  std::string key;
  key.reserve(source.key_template.text.size() + event_id.size() + source.name.size() +
              source.provider.size());
  for (const config::Template::Part& part : source.key_template.parts) {
    switch (part.slot) {
      case Slot::kText:
        key += part.text;
        break;
      case Slot::kEventId:
        key += event_id;
        break;
      case Slot::kSource:
        key += source.name;
        break;
      case Slot::kProvider:
        key += source.provider;
        break;
      default:  // not in a key template the configuration accepts
        break;
    }
  }
  std::optional<std::size_t> length = text::printable_utf8_length(key);
  if (!length || *length > text::kMaxKeyLength) return std::nullopt;
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
  std::optional<std::size_t> type_length = text::printable_utf8_length(type);
  if (!type_length || *type_length > text::kMaxTypeLength) {
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
  // Routes filter on the provider's event type, whatever job type the source gives its jobs.
  job.pushed = !cfg.routes.empty();
  for (const config::Route& route : cfg.routes) {
    if (route.takes(verdict.event_type)) {
      job.deliveries.push_back({route.name, route.retry.max_attempts});
    }
  }
  return {Outcome::kEnqueue, {}, std::move(job), {}};
}

}  // namespace flare::gateway
