// The GPT-2 byte-level alphabet: every byte maps to one printable code point so that a BPE
// vocabulary of strings covers arbitrary bytes. Printable Latin-1 bytes map to themselves; the
// rest (controls, space, 0x7F-0xA0, 0xAD) map to U+0100 upwards in byte order, which is why a
// space appears as "Ġ" (U+0120) and a newline as "Ċ" (U+010A) in such vocabularies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ondol::engine::byte_level {

// The code point that stands for `byte`.
char32_t encode_byte(uint8_t byte);
// The byte a code point stands for, or nullopt if it is not in the alphabet.
std::optional<uint8_t> decode_code_point(char32_t cp);

// Appends the byte-level encoding of `bytes` (UTF-8 of the mapped code points).
void encode(std::string_view bytes, std::string& out);
// Appends the bytes a byte-level string stands for; code points outside the alphabet are
// copied as their UTF-8 (a vocabulary with such tokens is not purely byte-level).
void decode(std::string_view text, std::string& out);

}  // namespace ondol::engine::byte_level
