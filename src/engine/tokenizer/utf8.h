// UTF-8 helpers shared by the tokenizers and the incremental detokenizer. Decoding never reads
// past the end and never trusts a lead byte: malformed input is reported, not assumed away.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ondol::engine::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

enum class Status : uint8_t {
  Valid,       // a complete, well-formed sequence
  Incomplete,  // a valid prefix cut short by the end of the input: more bytes may complete it
  Invalid,     // can never be valid (bad lead, bad continuation, overlong, surrogate, > U+10FFFF)
};

struct Decoded {
  char32_t code_point = kReplacement;  // kReplacement unless Valid
  uint32_t length = 1;  // bytes consumed: the sequence, or the maximal invalid prefix (>= 1)
  Status status = Status::Invalid;
};

// Decodes the sequence at the start of `s` (s must not be empty).
Decoded decode(std::string_view s);

// Length of the sequence a lead byte announces: 1 for ASCII and for bytes that cannot lead.
uint32_t sequence_length(unsigned char lead);

void append(std::string& out, char32_t code_point);

// Whether the whole string is well-formed UTF-8.
bool is_valid(std::string_view s);

}  // namespace ondol::engine::utf8
