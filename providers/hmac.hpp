// The cryptographic primitives every provider shares, and the encodings of a SHA-256 digest.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace flare::providers {

using Digest = std::array<std::uint8_t, 32>;

Digest hmac_sha256(std::string_view key, std::string_view data);
Digest sha256(std::string_view data);
// The raw MAC: 20, 32 or 64 bytes.
std::string hmac_bytes(config::Hmac::Algorithm algorithm, std::string_view key,
                       std::string_view data);

std::string to_hex(const Digest& digest);
std::string to_base64(const Digest& digest);
// Exactly 64 hexadecimal digits, either case; anything else is nullopt.
std::optional<Digest> digest_from_hex(std::string_view hex);

// Compares in time independent of where the inputs differ.
bool constant_time_equal(const Digest& a, const Digest& b);
// The same for encoded signatures; unequal lengths differ at once (a length is not a secret).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace flare::providers
