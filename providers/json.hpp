// A few string values read out of a JSON document in one pass, without building the document:
// providers need an event's id and type, not its whole tree.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flare::providers {

// An RFC 6901 JSON Pointer as its reference tokens, "~0" and "~1" already decoded.
using JsonPointer = std::vector<std::string>;

// "/event/type" → {"event", "type"}; nullopt unless the text is empty or starts with '/' and
// every '~' is followed by '0' or '1'.
std::optional<JsonPointer> parse_json_pointer(std::string_view text);

// nullopt when `json` is not one well-formed JSON object. Otherwise one entry per pointer: the
// string it points at, or nullopt when it points at nothing or at something other than a
// string. When an object repeats a key, its first value counts.
std::optional<std::vector<std::optional<std::string>>> json_strings(
    std::string_view json, const std::vector<JsonPointer>& pointers);

}  // namespace flare::providers
