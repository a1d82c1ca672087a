// Logging: human-readable lines by default, one JSON object per line with --log-format json.
// Lines go through a background thread; no secret, signature or payload is ever logged.
#pragma once

#include <string_view>
#include <utility>
#include <vector>

namespace flare::gateway {

enum class LogFormat { kText, kJson };

// Installs the process's logger. Call once, before any thread logs.
void setup_logging(LogFormat format);

using LogFields = std::vector<std::pair<std::string_view, std::string_view>>;

// One event with named fields: `name=value ...` as text, or the fields as members of the
// line's JSON object.
void log_event(const LogFields& fields);

}  // namespace flare::gateway
