// Text rules shared by the webhook path and the jobs API.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace flare::gateway {

// Keys, types and event ids: at most this many characters (code points).
inline constexpr std::size_t kMaxKeyLength = 200;
inline constexpr std::size_t kMaxTypeLength = 200;

// Counts code points; nullopt for invalid UTF-8 or any control character.
std::optional<std::size_t> printable_utf8_length(std::string_view s);

// A URL query value: %XX and '+' decoded; a '%' without two hex digits stays as it is.
std::string percent_decode(std::string_view s);

}  // namespace flare::gateway
