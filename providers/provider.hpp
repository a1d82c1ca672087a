// Webhook providers: pure code from a request's headers, raw body and the current time to a
// verified event or a typed rejection. No I/O, no clock: `now` is passed in.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace flare::providers {

// Views into the request; names compare case-insensitively, the first of repeated names wins.
class Headers {
 public:
  // Room for a typical request's fields at once, not a reallocation every few fields.
  Headers() { fields_.reserve(16); }
  void add(std::string_view name, std::string_view value) { fields_.emplace_back(name, value); }
  void clear() { fields_.clear(); }
  std::optional<std::string_view> get(std::string_view name) const;

 private:
  std::vector<std::pair<std::string_view, std::string_view>> fields_;
};

struct InboundRequest {
  const Headers& headers;
  std::string_view body;
};

enum class VerifyError {
  kNone,
  kMissingSignature,  // 400 missing_signature
  kInvalidSignature,  // 401 invalid_signature: malformed, or no secret matches
  kStale,             // 401 timestamp_out_of_tolerance
  kInvalidEventId,    // 400 invalid_event_id
  kInvalidPayload,    // 400 invalid_payload
};

struct Verdict {
  VerifyError error = VerifyError::kNone;
  std::string_view detail;  // a fixed text for the error message; never request data
  std::string event_id;
  std::string event_type;
  // A signed handshake (Slack's url_verification): answer with this, store nothing.
  std::optional<std::string> challenge;

  static Verdict reject(VerifyError e, std::string_view why) { return {e, why, {}, {}, {}}; }
  static Verdict accept(std::string id, std::string type) {
    return {VerifyError::kNone, {}, std::move(id), std::move(type), {}};
  }
};

class Provider {
 public:
  virtual ~Provider() = default;
  // Checks the signature over the raw body before any of the body is parsed.
  virtual Verdict verify(const InboundRequest& request,
                         std::chrono::system_clock::time_point now) const = 0;
};

// Built once from the source's configuration; shared read-only across threads.
std::unique_ptr<Provider> make_provider(const config::Source& source);

}  // namespace flare::providers
