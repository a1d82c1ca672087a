#include "providers/standard.hpp"

#include <charconv>

#include "providers/hmac.hpp"
#include "providers/json.hpp"

namespace flare::providers {

std::string standard_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                               std::string_view body) {
  std::string content;
  content.reserve(id.size() + 24 + body.size());
  content.append(id).append(".").append(std::to_string(timestamp)).append(".").append(body);
  Digest mac = hmac_sha256(key, content);
  return "v1," + to_base64(mac);
}

namespace {

// Signature lists are a few entries; anything far longer is not one.
constexpr std::size_t kMaxSignatureHeader = 4096;

std::optional<std::string_view> either(const Headers& headers, std::string_view standard,
                                       std::string_view svix) {
  std::optional<std::string_view> v = headers.get(standard);
  return v ? v : headers.get(svix);
}

}  // namespace

StandardProvider::StandardProvider(std::vector<config::Secret> keys, std::chrono::seconds tolerance)
    : keys_(std::move(keys)), tolerance_(tolerance) {}

Verdict StandardProvider::verify(const InboundRequest& request,
                                 std::chrono::system_clock::time_point now) const {
  const Headers& h = request.headers;
  std::optional<std::string_view> signatures = either(h, "webhook-signature", "svix-signature");
  std::optional<std::string_view> id = either(h, "webhook-id", "svix-id");
  std::optional<std::string_view> timestamp = either(h, "webhook-timestamp", "svix-timestamp");
  if (!signatures || signatures->empty() || !id || id->empty() || !timestamp) {
    return Verdict::reject(VerifyError::kMissingSignature,
                           "webhook-id, webhook-timestamp and webhook-signature are required");
  }
  std::int64_t t = 0;
  const char* end = timestamp->data() + timestamp->size();
  auto [stop, ec] = std::from_chars(timestamp->data(), end, t);
  if (timestamp->empty() || ec != std::errc() || stop != end ||
      signatures->size() > kMaxSignatureHeader) {
    return Verdict::reject(VerifyError::kInvalidSignature,
                           "webhook-timestamp must be Unix seconds; webhook-signature v1,<base64>");
  }
  bool match = false;
  for (const config::Secret& key : keys_) {
    if (!key.usable(now)) continue;
    std::string expected = standard_signature(key.key, *id, t, request.body);
    std::string_view list = *signatures;
    while (!list.empty()) {
      std::size_t space = list.find(' ');
      std::string_view entry = list.substr(0, space);
      list = space == std::string_view::npos ? std::string_view() : list.substr(space + 1);
      // Other schemes ("v1a,", "v2,") are not ours to check; they simply do not match.
      match |= constant_time_equal(entry, expected);
    }
  }
  if (!match) {
    return Verdict::reject(VerifyError::kInvalidSignature, "no v1 signature matches a secret");
  }
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (seconds - t > tolerance_.count() || t - seconds > tolerance_.count()) {
    return Verdict::reject(VerifyError::kStale, "the signature's timestamp is outside tolerance");
  }
  static const std::vector<JsonPointer> kType = {{"type"}};
  auto members = json_strings(request.body, kType);
  if (!members || !(*members)[0] || (*members)[0]->empty()) {
    return Verdict::reject(VerifyError::kInvalidPayload,
                           "the body is not a JSON object with a \"type\"");
  }
  return Verdict::accept(std::string(*id), std::move(*(*members)[0]));
}

}  // namespace flare::providers
