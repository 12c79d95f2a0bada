// Tokenizer: text <-> token ids for one model, built from its GGUF metadata. Immutable after
// construction and safe to share between threads (encode and decode are const and keep their
// scratch on the stack).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/special_token_matcher.h"
#include "engine/tokenizer/subword_model.h"
#include "engine/tokenizer/token.h"
#include "engine/tokenizer/vocab.h"

namespace ondol::engine {

struct EncodeOptions {
  bool add_special = true;     // BOS/EOS as the vocabulary asks (add_bos_token/add_eos_token)
  bool parse_special = false;  // match control tokens ("<|im_end|>") in the text; keep false
                               // for user-supplied text so it cannot forge turn boundaries
};

struct DecodeOptions {
  bool render_special = false;      // write control tokens' text instead of dropping them
  bool strip_leading_space = true;  // drop the space the encoder's prefix added (SPM, BERT)
};

class Tokenizer {
 public:
  static Result<Tokenizer> from_gguf(const GgufFile& file);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<TokenId> encode(std::string_view text, EncodeOptions options = {}) const;
  void encode(std::string_view text, EncodeOptions options, std::vector<TokenId>& out) const;

  // Bytes of the whole sequence; may end inside a UTF-8 sequence if the ids do.
  std::string decode(std::span<const TokenId> ids, DecodeOptions options = {}) const;
  // The bytes one token stands for (possibly part of a UTF-8 sequence); empty for control
  // tokens unless render_special, and for ids outside the vocabulary.
  std::string_view piece(TokenId id, bool render_special = false) const;
  // Whether decode's strip_leading_space applies to this tokenizer's first normal token.
  bool adds_space_prefix() const { return strips_leading_space_; }

  const Vocab& vocab() const { return *vocab_; }
  size_t vocab_size() const { return vocab_->size(); }
  TokenId bos() const { return vocab_->special().bos; }
  TokenId eos() const { return vocab_->special().eos; }
  // End of generation: eos, eot, eom, and control tokens that end a turn ("<|im_end|>", ...).
  bool is_end_of_generation(TokenId id) const {
    return vocab_->contains(id) && end_of_generation_[static_cast<size_t>(id)];
  }

 private:
  Tokenizer() = default;
  void build_pieces();

  std::unique_ptr<Vocab> vocab_;  // behind a pointer: the models keep a reference to it
  std::unique_ptr<SubwordModel> model_;
  SpecialTokenMatcher special_matcher_;
  std::vector<char> piece_bytes_;        // decoded bytes of every token, back to back
  std::vector<uint32_t> piece_offsets_;  // vocab size + 1
  std::vector<bool> hidden_;             // control/unknown: piece shown only with render_special
  std::vector<bool> end_of_generation_;
  bool strips_leading_space_ = false;
};

}  // namespace ondol::engine
