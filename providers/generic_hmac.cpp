#include "providers/generic_hmac.hpp"

#include <charconv>

#include "providers/hmac.hpp"
#include "providers/json.hpp"
#include "text/text.hpp"

namespace flare::providers {
namespace {

constexpr std::size_t kMaxSignatureHeader = 4096;

std::optional<std::string> decode(config::Hmac::Encoding encoding, std::string_view encoded) {
  if (encoding == config::Hmac::Encoding::kHex) return text::from_hex(encoded);
  return text::decode_base64(encoded);
}

std::string encode(config::Hmac::Encoding encoding, std::string_view bytes) {
  return encoding == config::Hmac::Encoding::kHex ? text::to_hex(bytes) : text::to_base64(bytes);
}

// Unix seconds (Slack, Svix and most others) or an RFC 3339 date-time (Zendesk).
std::optional<std::int64_t> unix_seconds(std::string_view value) {
  std::int64_t t = 0;
  const char* end = value.data() + value.size();
  auto [stop, ec] = std::from_chars(value.data(), end, t);
  if (ec == std::errc() && stop == end && t >= 0) return t;
  std::optional<std::int64_t> micros = text::parse_rfc3339(value);
  if (!micros) return std::nullopt;
  return *micros / 1'000'000;
}

std::optional<std::string_view> non_empty(const Headers& headers, std::string_view name) {
  std::optional<std::string_view> value = headers.get(name);
  if (value && value->empty()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::string> hmac_signed_content(const config::Hmac& scheme, const Headers& headers,
                                               std::string_view body) {
  using Slot = config::Template::Slot;
  std::string out;
  out.reserve(scheme.signed_content.text.size() + body.size());
  for (const config::Template::Part& part : scheme.signed_content.parts) {
    std::string_view header;
    switch (part.slot) {
      case Slot::kText:
        out.append(part.text);
        continue;
      case Slot::kBody:
        out.append(body);
        continue;
      case Slot::kTimestamp:
        header = scheme.timestamp_header;
        break;
      case Slot::kId:
        header = scheme.id_header;
        break;
      case Slot::kHeader:
        header = part.text;
        break;
      default:  // not in a signed content the configuration accepts
        continue;
    }
    std::optional<std::string_view> value = non_empty(headers, header);
    if (!value) return std::nullopt;
    out.append(*value);
  }
  return out;
}

std::string hmac_signature(const config::Hmac& scheme, std::string_view key,
                           std::string_view content) {
  return scheme.prefix + encode(scheme.encoding, hmac_bytes(scheme.algorithm, key, content));
}

GenericHmacProvider::GenericHmacProvider(config::Hmac scheme, std::vector<config::Secret> secrets,
                                         std::chrono::seconds tolerance, std::string name)
    : scheme_(std::move(scheme)),
      secrets_(std::move(secrets)),
      tolerance_(tolerance),
      name_(std::move(name)) {
  // The configuration has checked both pointers.
  for (const std::string* p : {&scheme_.id_pointer, &scheme_.type_pointer}) {
    pointers_.push_back(p->empty() ? JsonPointer{} : *parse_json_pointer(*p));
  }
}

Verdict GenericHmacProvider::verify(const InboundRequest& request,
                                    std::chrono::system_clock::time_point now) const {
  const Headers& h = request.headers;
  std::optional<std::string_view> signature = non_empty(h, scheme_.header);
  std::optional<std::string_view> timestamp;
  if (!scheme_.timestamp_header.empty()) timestamp = non_empty(h, scheme_.timestamp_header);
  std::optional<std::string> content = hmac_signed_content(scheme_, h, request.body);
  if (!signature || (!scheme_.timestamp_header.empty() && !timestamp) || !content) {
    return Verdict::reject(VerifyError::kMissingSignature,
                           "the signature header, or a header it signs, is missing");
  }
  std::optional<std::string> candidate;
  if (signature->size() <= kMaxSignatureHeader &&
      signature->substr(0, scheme_.prefix.size()) == scheme_.prefix) {
    candidate = decode(scheme_.encoding, signature->substr(scheme_.prefix.size()));
  }
  std::optional<std::int64_t> t;
  if (timestamp) {
    t = unix_seconds(*timestamp);
    if (!t) candidate.reset();
  }
  if (!candidate) {
    return Verdict::reject(VerifyError::kInvalidSignature,
                           "the signature is not the configured prefix and encoding, or the "
                           "timestamp is neither Unix seconds nor RFC 3339");
  }
  bool match = false;
  for (const config::Secret& secret : secrets_) {
    if (!secret.usable(now)) continue;
    match |= constant_time_equal(hmac_bytes(scheme_.algorithm, secret.key, *content), *candidate);
  }
  if (!match) {
    return Verdict::reject(VerifyError::kInvalidSignature, "the signature matches no secret");
  }
  if (timestamp) {
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (seconds - *t > tolerance_.count() || *t - seconds > tolerance_.count()) {
      return Verdict::reject(VerifyError::kStale, "the signature's timestamp is outside tolerance");
    }
  }

  std::optional<std::string> id;
  std::optional<std::string> type;
  if (!scheme_.id_pointer.empty() || !scheme_.type_pointer.empty()) {
    auto fields = json_strings(request.body, pointers_);
    if (!fields)
      return Verdict::reject(VerifyError::kInvalidPayload, "the body is not a JSON object");
    if (!scheme_.id_pointer.empty()) id = std::move((*fields)[0]);
    if (!scheme_.type_pointer.empty()) type = std::move((*fields)[1]);
  }
  if (!scheme_.id_header.empty()) {
    if (auto v = h.get(scheme_.id_header)) id.emplace(*v);
  }
  if (!scheme_.type_header.empty()) {
    if (auto v = h.get(scheme_.type_header)) type.emplace(*v);
  }
  if (!id || id->empty()) {
    return Verdict::reject(VerifyError::kInvalidEventId, "the event id is missing");
  }
  bool typed = !scheme_.type_header.empty() || !scheme_.type_pointer.empty();
  if (typed && (!type || type->empty())) {
    return Verdict::reject(VerifyError::kInvalidPayload, "the event type is missing");
  }
  return Verdict::accept(std::move(*id), typed ? std::move(*type) : name_);
}

}  // namespace flare::providers
