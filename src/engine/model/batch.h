// Batch: the token positions one forward() computes, drawn from any number of sequences. A
// prompt being prefilled contributes many consecutive positions, a decoding sequence one; each
// names the KV-cache slot of its sequence and whether its logits are wanted (only the last
// position of a prompt needs them, so the vocab-sized output matmul runs for those rows only).
#pragma once

#include <cstdint>
#include <span>

#include "engine/tokenizer/token.h"

namespace ondol::engine {

// Which attention path a token takes. The two paths sum in different orders at the SIMD levels,
// so a token's logits depend on the path; a caller that names the role gets the same bits for
// a token however its prompt was chunked and whatever it was batched with.
enum class TokenRole : uint8_t {
  kUnspecified,  // by run length: 4 or more consecutive tokens on the matmul path
  kPrompt,       // always the matmul path (its bits do not depend on the chunking)
  kGenerated,    // always the per-row path, one token alone, as when it was decoded
};

struct BatchToken {
  TokenId token = 0;
  int32_t position = 0;  // index of this token in its sequence (0 = first)
  int32_t seq_slot = 0;  // which KvView block table holds the sequence's K/V
  bool wants_logits = false;
  TokenRole role = TokenRole::kUnspecified;
};

// Tokens of one sequence appear in increasing position order; logits rows come out in batch
// order of the tokens that want them.
struct Batch {
  std::span<const BatchToken> tokens;

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_logits() const {
    int64_t n = 0;
    for (const BatchToken& t : tokens) n += t.wants_logits ? 1 : 0;
    return n;
  }
};

}  // namespace ondol::engine
