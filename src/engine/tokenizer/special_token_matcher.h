// SpecialTokenMatcher: splits text into raw-text fragments and whole special tokens before any
// subword model runs. Matching is leftmost-longest over a byte trie, so "<|im_end|>" wins over
// "<|im" and scanning costs O(text bytes x longest token) with no regex.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer/token.h"

namespace ondol::engine {

class SpecialTokenMatcher {
 public:
  struct Fragment {
    std::string_view text;     // the raw text, or the matched token's text
    TokenId token = kNoToken;  // kNoToken: raw text for the subword model
  };

  // `always`: matched even when the caller does not parse special tokens (user-defined tokens,
  // which the original tokenizers always split out); otherwise only with parse_special.
  void add(std::string_view text, TokenId id, bool always);

  // Appends the fragments of `text` to `out`; adjacent raw text stays one fragment.
  void split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 private:
  struct Node {
    TokenId token = kNoToken;
    bool always = false;
  };
  uint32_t child(uint32_t node, unsigned char byte) const;

  std::vector<Node> nodes_{Node{}};               // node 0 is the root
  std::unordered_map<uint64_t, uint32_t> edges_;  // (node << 8 | byte) -> child node
  std::array<bool, 256> can_start_{};             // bytes that begin some token
};

}  // namespace ondol::engine
