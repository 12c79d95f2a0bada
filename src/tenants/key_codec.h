// Virtual keys: "sk-" + 32 random bytes in base64url (no padding). Only the SHA-256 hex of a key
// is stored; a presented key is hashed and looked up, and hashes are compared in constant time.
#pragma once

#include <string>
#include <string_view>

namespace ondol::tenants {

inline constexpr std::string_view kKeyPrefix = "sk-";
inline constexpr size_t kKeyRandomBytes = 32;

// A new key from the operating system's random source (RAND_bytes).
std::string generate_key();
// Lower-case hex SHA-256 of the key as presented.
std::string hash_key(std::string_view key);
// Constant time in the length of the inputs (CRYPTO_memcmp).
bool equal_constant_time(std::string_view a, std::string_view b);
// "sk-...AbCd": enough to recognise a key in a listing, nothing to use it with.
std::string key_display(std::string_view key);

}  // namespace ondol::tenants
