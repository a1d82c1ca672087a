#include "providers/stripe.hpp"

#include <charconv>

#include "providers/hmac.hpp"
#include "providers/json.hpp"

namespace flare::providers {
namespace {

// Stripe's own headers are under 1 KiB even with several v1 values during a secret roll.
constexpr std::size_t kMaxHeaderBytes = 4096;

struct ParsedHeader {
  std::string_view timestamp_text;
  std::int64_t timestamp = 0;
  std::vector<Digest> v1;
};

std::optional<ParsedHeader> parse_header(std::string_view header) {
  if (header.size() > kMaxHeaderBytes) return std::nullopt;
  ParsedHeader parsed;
  bool has_timestamp = false;
  while (!header.empty()) {
    std::size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = item.substr(0, eq);
    std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      const char* end = value.data() + value.size();
      auto [stop, ec] = std::from_chars(value.data(), end, parsed.timestamp);
      if (has_timestamp || value.empty() || ec != std::errc() || stop != end ||
          parsed.timestamp < 0) {
        return std::nullopt;
      }
      parsed.timestamp_text = value;
      has_timestamp = true;
    } else if (key == "v1") {
      // A value that is not 64 hex digits can match nothing; skipping it keeps the others usable.
      if (auto digest = digest_from_hex(value)) parsed.v1.push_back(*digest);
    }
  }
  if (!has_timestamp || parsed.v1.empty()) return std::nullopt;
  return parsed;
}

}  // namespace

StripeProvider::StripeProvider(std::vector<config::Secret> secrets, std::chrono::seconds tolerance)
    : secrets_(std::move(secrets)), tolerance_(tolerance) {}

Verdict StripeProvider::verify(const InboundRequest& request,
                               std::chrono::system_clock::time_point now) const {
  std::optional<std::string_view> header = request.headers.get("Stripe-Signature");
  if (!header || header->empty()) {
    return Verdict::reject(VerifyError::kMissingSignature, "Stripe-Signature header is missing");
  }
  std::optional<ParsedHeader> parsed = parse_header(*header);
  if (!parsed) {
    return Verdict::reject(VerifyError::kInvalidSignature,
                           "Stripe-Signature needs one t=<unix time> and at least one v1=<hex>");
  }
  std::string signed_payload;
  signed_payload.reserve(parsed->timestamp_text.size() + 1 + request.body.size());
  signed_payload.append(parsed->timestamp_text).append(".").append(request.body);
  bool match = false;
  for (const config::Secret& secret : secrets_) {
    if (!secret.usable(now)) continue;
    Digest expected = hmac_sha256(secret.key, signed_payload);
    for (const Digest& candidate : parsed->v1) match |= constant_time_equal(expected, candidate);
  }
  if (!match) {
    return Verdict::reject(VerifyError::kInvalidSignature, "no v1 signature matches a secret");
  }
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::int64_t age = seconds - parsed->timestamp;
  if (age > tolerance_.count() || -age > tolerance_.count()) {
    return Verdict::reject(VerifyError::kStale, "the signature's timestamp is outside tolerance");
  }

  static const std::vector<JsonPointer> kIdAndType = {{"id"}, {"type"}};
  auto members = json_strings(request.body, kIdAndType);
  if (!members)
    return Verdict::reject(VerifyError::kInvalidPayload, "the body is not a JSON object");
  std::optional<std::string>& id = (*members)[0];
  std::optional<std::string>& type = (*members)[1];
  if (!id || id->empty()) {
    return Verdict::reject(VerifyError::kInvalidEventId, "the event has no string \"id\"");
  }
  if (!type || type->empty()) {
    return Verdict::reject(VerifyError::kInvalidPayload, "the event has no string \"type\"");
  }
  return Verdict::accept(std::move(*id), std::move(*type));
}

}  // namespace flare::providers
