// Token ids and the token types a GGUF vocabulary records (tokenizer.ggml.token_type).
#pragma once

#include <cstdint>

namespace ondol::engine {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// On-disk values of tokenizer.ggml.token_type (SentencePiece's piece types).
enum class TokenType : uint8_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,      // <unk>: stands for text the vocabulary cannot spell
  Control = 3,      // <s>, </s>, <|im_end|>: never produced from text unless parse_special
  UserDefined = 4,  // added tokens: always matched as whole strings in text
  Unused = 5,
  Byte = 6,  // <0x0A>: SentencePiece byte fallback
};

}  // namespace ondol::engine
