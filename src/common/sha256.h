// SHA-256 for the request path (virtual-key hashes, response-cache keys). OpenSSL 3's one-shot
// SHA256() looks the algorithm up in its provider tables (a lock and a hash lookup) on every call;
// this fetches it once and keeps one digest context per thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ondol {

std::array<uint8_t, 32> sha256(std::string_view data);

// Lower-case hex of sha256(data): 64 characters.
std::string sha256_hex(std::string_view data);

}  // namespace ondol
