// SpmModel: SentencePiece-style BPE (tokenizer.ggml.model = "llama"). Spaces become "▁"
// (U+2581), a "▁" is prepended at the start of a segment when add_space_prefix is set, and
// adjacent pieces merge greedily by the highest score of the merged token. Characters no token
// spells fall back to <0xXX> byte tokens, else to <unk>.
#pragma once

#include <array>

#include "engine/tokenizer/subword_model.h"
#include "engine/tokenizer/vocab.h"

namespace ondol::engine {

class SpmModel final : public SubwordModel {
 public:
  explicit SpmModel(const Vocab& vocab);
  void encode(std::string_view text, bool starts_segment, std::vector<TokenId>& out) const override;

  // The "▁" that stands for a space in SentencePiece vocabularies.
  static constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

 private:
  // A token the merges may produce: normal or user-defined (control, byte and unknown tokens
  // are never spelled from text).
  TokenId find_piece(std::string_view text) const;

  const Vocab& vocab_;
  std::array<TokenId, 256> byte_tokens_;  // <0xXX> per byte, or kNoToken
};

}  // namespace ondol::engine
