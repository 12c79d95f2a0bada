// WordPieceModel: BERT's tokenizer (tokenizer.ggml.model = "bert"). Text is normalised as
// BERT does (drop control characters, space out CJK ideographs, NFD and strip accents,
// lowercase), split on whitespace and punctuation, and each word is covered greedily by the
// longest vocabulary entries. GGUF stores word-initial entries with a "▁" prefix and
// continuations bare (BERT's "##" removed). A word that cannot be covered becomes [UNK].
#pragma once

#include <string>

#include "engine/tokenizer/subword_model.h"
#include "engine/tokenizer/vocab.h"

namespace ondol::engine {

class WordPieceModel final : public SubwordModel {
 public:
  explicit WordPieceModel(const Vocab& vocab) : vocab_(vocab) {}
  void encode(std::string_view text, bool starts_segment, std::vector<TokenId>& out) const override;

  // BERT's limit: a longer word is [UNK] without trying.
  static constexpr size_t kMaxCharsPerWord = 100;

 private:
  void encode_word(std::string_view word, std::string& scratch, std::vector<TokenId>& out) const;

  const Vocab& vocab_;
};

}  // namespace ondol::engine
