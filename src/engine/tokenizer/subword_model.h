// SubwordModel: the part of a tokenizer that turns one run of plain text (special tokens
// already split out) into token ids. One implementation per tokenizer.ggml.model.
#pragma once

#include <string_view>
#include <vector>

#include "engine/tokenizer/token.h"

namespace ondol::engine {

class SubwordModel {
 public:
  virtual ~SubwordModel() = default;
  // Appends the ids of `text`. `starts_segment`: the text begins the input or follows a
  // special token (SentencePiece adds its space prefix there).
  virtual void encode(std::string_view text, bool starts_segment,
                      std::vector<TokenId>& out) const = 0;
};

}  // namespace ondol::engine
