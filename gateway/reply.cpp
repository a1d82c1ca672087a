#include "gateway/reply.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace flare::gateway {
namespace {

struct Row {
  unsigned status;
  std::string_view name;     // the error code for errors
  std::string_view message;  // the default error message
};

std::string_view reason(unsigned code) {
  switch (code) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 303:
      return "See Other";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
  }
  return "Internal Server Error";
}

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
    case Outcome::kOk:
      return {200, "ok", {}};
    case Outcome::kCreated:
      return {201, "created", {}};
    case Outcome::kDeleted:
      return {204, "deleted", {}};
    case Outcome::kChallenge:
      return {200, "challenge", {}};
    case Outcome::kSeeOther:
      return {303, "see_other", {}};
    case Outcome::kNotFound:
      return {404, "not_found", "no such path"};
    case Outcome::kMethodNotAllowed:
      return {405, "method_not_allowed", "method not allowed on this path"};
    case Outcome::kPayloadTooLarge:
      return {413, "payload_too_large", "the body exceeds the limit of this path"};
    case Outcome::kHeaderTooLarge:
      return {431, "header_too_large", "the request header exceeds 16 KiB"};
    case Outcome::kBadRequest:
      return {400, "bad_request", "malformed HTTP request"};
    case Outcome::kUnavailable:
      return {503, "unavailable",
              "the database is unavailable; the request may or may not have taken effect: retry "
              "it (with its idempotency key it takes effect once)"};
    case Outcome::kInternal:
      return {500, "internal_error", "the request could not be completed; retry later"};
    case Outcome::kUnknownSource:
      return {404, "unknown_source", "no source of that name is configured"};
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
    case Outcome::kUnauthorized:
      return {401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>"};
    case Outcome::kInvalidJson:
      return {400, "invalid_json", "the body is not a JSON object"};
    case Outcome::kValidationError:
      return {400, "validation_error", "a field is invalid"};
    case Outcome::kJobNotFound:
      return {404, "not_found", "no such job"};
    case Outcome::kRouteNotFound:
      return {404, "not_found", "no such route of a source of this project"};
    case Outcome::kReplayNotFound:
      return {404, "not_found", "no such replay"};
    case Outcome::kIdempotencyConflict:
      return {409, "idempotency_conflict", "a job with this idempotency key already exists"};
    case Outcome::kLeaseLost:
      return {409, "lease_lost", "this lease token is not the job's current lease"};
    case Outcome::kInvalidStatus:
      return {409, "invalid_status", "the job's status does not allow this"};
    case Outcome::kSignInRefused:
      return {401, "sign_in_refused", "the token is no operator's"};
    case Outcome::kForbidden:
      return {403, "forbidden", "not allowed"};
    case Outcome::kPayloadPruned:
      return {409, "payload_pruned", "retention removed the job's payload: it cannot run again"};
  }
  return {500, "internal_error", "unexpected outcome"};
}

// A JSON body written into a buffer and writer kept per thread: a reply costs one allocation,
// its body, instead of one for every stack the writer and its buffer would make. A buffer that
// grew past a few KiB (a long challenge) is given back rather than kept.
class Json {
 public:
  static Json& fresh() {
    thread_local Json json;
    bool large = json.buffer_.GetSize() > kKept;
    json.buffer_.Clear();
    if (large) json.buffer_.ShrinkToFit();
    json.writer_.Reset(json.buffer_);
    return json;
  }
  void string(std::string_view s) {
    writer_.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  void fields(const Fields& fields) {
    for (const auto& [name, value] : fields) {
      string(name);
      string(value);
    }
  }
  rapidjson::Writer<rapidjson::StringBuffer>& writer() { return writer_; }
  std::string str() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

 private:
  static constexpr std::size_t kKept = 4096;
  Json() : writer_(buffer_) {}

  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace

Reply error(Outcome outcome, std::string_view message, const Fields& fields) {
  Row r = row(outcome);
  Json& json = Json::fresh();
  json.writer().StartObject();
  json.string("error");
  json.writer().StartObject();
  json.string("code");
  json.string(r.name);
  json.string("message");
  json.string(message.empty() ? r.message : message);
  json.fields(fields);
  json.writer().EndObject();
  json.writer().EndObject();
  return Reply{outcome, json.str(), "application/json", {}, {}};
}

Reply status(Outcome outcome, const Fields& fields) {
  Row r = row(outcome);
  Json& json = Json::fresh();
  json.writer().StartObject();
  json.string("status");
  json.string(r.name);
  json.fields(fields);
  json.writer().EndObject();
  return Reply{outcome, json.str(), "application/json", {}, {}};
}

Reply challenge(std::string_view value) {
  Json& json = Json::fresh();
  json.writer().StartObject();
  json.string("challenge");
  json.string(value);
  json.writer().EndObject();
  return success(Outcome::kChallenge, json.str());
}

Reply success(Outcome outcome, std::string body) {
  return Reply{outcome, std::move(body), "application/json", {}, {}};
}

Reply not_allowed(std::string_view allow) {
  Reply r = error(Outcome::kMethodNotAllowed);
  r.allow = allow;
  return r;
}

Reply store_failure(jobs::Outcome failure) {
  return error(failure == jobs::Outcome::kUnavailable ? Outcome::kUnavailable : Outcome::kInternal);
}

unsigned http_status(Outcome outcome) { return row(outcome).status; }

std::string_view outcome_name(Outcome outcome) { return row(outcome).name; }

void render(const Reply& reply, const Framing& framing, std::string& out) {
  unsigned code = http_status(reply.outcome);
  out.clear();
  out.append(framing.http10 ? "HTTP/1.0 " : "HTTP/1.1 ")
      .append(std::to_string(code))
      .append(" ")
      .append(reason(code))
      .append("\r\nServer: flare-gateway\r\n");
  auto field = [&out](std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
  };
  if (!reply.body.empty()) field("Content-Type", reply.content_type);
  field("X-Request-Id", framing.request_id);
  if (!reply.allow.empty()) field("Allow", reply.allow);
  out.append(reply.headers);
  if (code == 503) field("Retry-After", std::to_string(kRetryAfterSeconds));
  if (reply.outcome == Outcome::kUnauthorized) field("WWW-Authenticate", "Bearer");
  // HTTP/1.1 keeps a connection open unless told otherwise; HTTP/1.0 closes it unless told.
  if (!framing.keep_alive && !framing.http10) field("Connection", "close");
  if (framing.keep_alive && framing.http10) field("Connection", "keep-alive");
  // A 204 has no body and no length (RFC 9110, 8.6).
  if (code != 204) field("Content-Length", std::to_string(reply.body.size()));
  out.append("\r\n").append(reply.body);
}

}  // namespace flare::gateway
