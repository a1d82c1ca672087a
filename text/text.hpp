// The text formats and rules every folder shares: hex and base64, RFC 3339 date-times, UUIDs,
// printable UTF-8, URL query values, and how long a job's key or type may be. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flare::text {

// A job's idempotency key and its type: at most this many characters (code points).
inline constexpr std::size_t kMaxKeyLength = 200;
inline constexpr std::size_t kMaxTypeLength = 200;

// Counts code points; nullopt for invalid UTF-8 or any control character.
std::optional<std::size_t> printable_utf8_length(std::string_view s);

// At most `max_bytes` of `s` from its start, as printable UTF-8 whole code points: a line break
// or tab becomes a space, any other control character or byte that is not UTF-8 a '?'. For
// bytes from elsewhere (a destination's answer) that are shown as text.
std::string printable_prefix(std::string_view s, std::size_t max_bytes);

// The text on one line: each run of control characters (newlines, tabs, ...) one space, none at
// either end. For messages from elsewhere (libpq's hold newlines and tabs) bound for a log line.
std::string one_line(std::string_view s);

// Equal but for the case of ASCII letters.
bool iequals(std::string_view a, std::string_view b);

// A URL query value: %XX and '+' decoded; a '%' without two hex digits stays as it is.
std::string percent_decode(std::string_view s);

// 0 to 15 for a hexadecimal digit of either case, -1 for any other character.
int hex_digit(char c);
// Lower-case hexadecimal, two digits a byte.
std::string to_hex(std::string_view bytes);
// Any even number of hexadecimal digits, either case; nullopt for anything else.
std::optional<std::string> from_hex(std::string_view hex);

// Standard base64 with padding.
std::string to_base64(std::string_view bytes);
// Standard base64 with padding; nullopt for anything else.
std::optional<std::string> decode_base64(std::string_view text);

// RFC 3339 date-time to Unix microseconds; nullopt when malformed or out of range.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);
// Microseconds since the Unix epoch as YYYY-MM-DDTHH:MM:SS.ffffffZ, the form the store gives
// times in.
std::string format_rfc3339(std::int64_t micros);

// A UUID in its text form: 8-4-4-4-12 hexadecimal digits, either case.
bool is_uuid(std::string_view s);

}  // namespace flare::text
