#include "gateway/reply.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace flare::gateway {
namespace {

struct Row {
  unsigned status;
  std::string_view name;     // error code for errors
  std::string_view message;  // default error message; empty for successes
};

Row row(Outcome outcome) {
  switch (outcome) {
    case Outcome::kEnqueue:
      break;
    case Outcome::kAccepted:
      return {202, "accepted", {}};
    case Outcome::kDuplicate:
      return {200, "duplicate", {}};
    case Outcome::kHealthy:
      return {200, "ok", {}};
    case Outcome::kReady:
      return {200, "ready", {}};
    case Outcome::kUnknownSource:
      return {404, "unknown_source", "no source of that name is configured"};
    case Outcome::kNotFound:
      return {404, "not_found", "no such route"};
    case Outcome::kMethodNotAllowed:
      return {405, "method_not_allowed", "method not allowed on this route"};
    case Outcome::kPayloadTooLarge:
      return {413, "payload_too_large", "the body exceeds this source's max_body_bytes"};
    case Outcome::kHeaderTooLarge:
      return {431, "header_too_large", "the request header exceeds 16 KiB"};
    case Outcome::kBadRequest:
      return {400, "bad_request", "malformed HTTP request"};
    case Outcome::kMissingSignature:
      return {400, "missing_signature", "the signature header is missing"};
    case Outcome::kInvalidSignature:
      return {401, "invalid_signature", "the signature does not verify"};
    case Outcome::kStale:
      return {401, "timestamp_out_of_tolerance", "the signature's timestamp is outside tolerance"};
    case Outcome::kInvalidEventId:
      return {400, "invalid_event_id", "the event id is missing or unusable"};
    case Outcome::kInvalidPayload:
      return {400, "invalid_payload", "the body cannot be parsed"};
    case Outcome::kUnavailable:
      return {503, "unavailable", "the database is unavailable; nothing was stored, retry later"};
    case Outcome::kInternal:
      return {500, "internal_error", "the event could not be stored; retry later"};
  }
  return {500, "internal_error", "unexpected outcome"};
}

}  // namespace

Reply make_reply(Outcome outcome, std::string_view detail, std::string_view job_id,
                 std::string_view key, std::string_view allow) {
  Row r = row(outcome);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> json(buffer);
  auto string = [&json](std::string_view s) {
    json.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  json.StartObject();
  if (r.status < 300) {
    string("status");
    string(r.name);
    if (!job_id.empty()) {
      string("job_id");
      string(job_id);
      string("idempotency_key");
      string(key);
    }
  } else {
    string("error");
    json.StartObject();
    string("code");
    string(r.name);
    string("message");
    string(detail.empty() ? r.message : detail);
    json.EndObject();
  }
  json.EndObject();
  Reply reply{r.status, r.name, std::string(buffer.GetString(), buffer.GetSize()), {}, false};
  if (outcome == Outcome::kMethodNotAllowed) reply.allow = allow;
  reply.retry_after = r.status == 503;
  return reply;
}

}  // namespace flare::gateway
