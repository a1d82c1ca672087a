#include "providers/generic_hmac.hpp"

#include <charconv>

#include "providers/hmac.hpp"
#include "providers/json.hpp"

namespace flare::providers {
namespace {

constexpr std::size_t kMaxSignatureHeader = 4096;

std::optional<std::string> decode(config::Hmac::Encoding encoding, std::string_view text) {
  if (encoding == config::Hmac::Encoding::kHex) return from_hex(text);
  return config::decode_base64(text);
}

std::string encode(config::Hmac::Encoding encoding, std::string_view bytes) {
  return encoding == config::Hmac::Encoding::kHex ? to_hex(bytes) : to_base64(bytes);
}

// Unix seconds (Slack, Svix and most others) or an RFC 3339 date-time (Zendesk).
std::optional<std::int64_t> unix_seconds(std::string_view text) {
  std::int64_t t = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, t);
  if (ec == std::errc() && stop == end && t >= 0) return t;
  std::optional<std::int64_t> micros = config::parse_rfc3339(text);
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
  const std::string& tmpl = scheme.signed_content;
  std::string out;
  out.reserve(tmpl.size() + body.size());
  // The configuration has checked every placeholder, so each '{' opens a known one.
  for (std::size_t i = 0; i < tmpl.size();) {
    if (tmpl[i] != '{') {
      out += tmpl[i++];
      continue;
    }
    std::size_t close = tmpl.find('}', i);
    std::string_view name = std::string_view(tmpl).substr(i + 1, close - i - 1);
    i = close + 1;
    if (name == "body") {
      out.append(body);
      continue;
    }
    std::string_view header = name == "timestamp" ? std::string_view(scheme.timestamp_header)
                              : name == "id"      ? std::string_view(scheme.id_header)
                                                  : name.substr(7);  // "header:"
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
