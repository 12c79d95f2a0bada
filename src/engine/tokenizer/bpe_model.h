// BpeModel: GPT-2-style byte-level BPE (tokenizer.ggml.model = "gpt2"). Text is split into
// words by the vocabulary's PreTokenizer; each word's bytes start as single-byte tokens (in the
// byte-level alphabet) and adjacent pairs merge by rank, lowest rank first, leftmost first.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>

#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/subword_model.h"
#include "engine/tokenizer/vocab.h"

namespace ondol::engine {

class BpeModel final : public SubwordModel {
 public:
  BpeModel(const Vocab& vocab, PreTokenizer pre_tokenizer, bool ignore_merges);
  void encode(std::string_view text, bool starts_segment, std::vector<TokenId>& out) const override;

 private:
  struct Merge {
    int32_t rank;
    TokenId merged;
  };
  struct Scratch;  // per-encode buffers reused across words
  void encode_word(std::string_view word, Scratch& scratch, std::vector<TokenId>& out) const;
  const Merge* find_merge(TokenId left, TokenId right) const;

  const Vocab& vocab_;
  PreTokenizer pre_tokenizer_;
  bool ignore_merges_;
  std::array<TokenId, 256> byte_tokens_;        // the token of each byte's alphabet character
  std::unordered_map<uint64_t, Merge> merges_;  // (left << 32 | right) -> rank, result
};

}  // namespace ondol::engine
