// Vocab: the token table of a tokenizer, copied out of a GGUF's tokenizer.ggml.* metadata into
// memory the tokenizer owns (one text arena, parallel arrays of types and scores, a text->id
// index), plus the special token ids and flags. The subword models read it; nothing here
// tokenizes.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/token.h"

namespace ondol::engine {

enum class TokenizerKind : uint8_t {
  SentencePiece,  // tokenizer.ggml.model = "llama"
  BytePair,       // "gpt2": byte-level BPE
  WordPiece,      // "bert"
};

struct SpecialTokenIds {
  TokenId bos = kNoToken;
  TokenId eos = kNoToken;
  TokenId eot = kNoToken;  // end of turn (chat models that keep eos for documents)
  TokenId eom = kNoToken;  // end of message (tool calls)
  TokenId unk = kNoToken;
  TokenId sep = kNoToken;
  TokenId pad = kNoToken;
  TokenId cls = kNoToken;
  TokenId mask = kNoToken;
};

class Vocab {
 public:
  static Result<Vocab> from_gguf(const GgufFile& file);

  TokenizerKind kind() const { return kind_; }
  // tokenizer.ggml.pre ("default" when absent): selects the BPE pre-tokenizer.
  const std::string& pre_tokenizer() const { return pre_; }
  size_t size() const { return types_.size(); }
  bool contains(TokenId id) const { return id >= 0 && static_cast<size_t>(id) < size(); }

  std::string_view text(TokenId id) const {
    return {arena_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]};
  }
  TokenType type(TokenId id) const { return types_[id]; }
  float score(TokenId id) const { return scores_.empty() ? 0.0f : scores_[id]; }
  // Exact lookup of a token's stored text; kNoToken when absent.
  TokenId find(std::string_view text) const {
    auto it = index_.find(text);
    return it == index_.end() ? kNoToken : it->second;
  }
  size_t max_token_bytes() const { return max_token_bytes_; }

  const SpecialTokenIds& special() const { return special_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }

  // BPE merges in rank order (rank = index), as pairs of token ids.
  const std::vector<std::pair<TokenId, TokenId>>& merges() const { return merges_; }

 private:
  Status load_tokens(const GgufFile& file);
  Status load_special(const GgufFile& file);
  Status load_merges(const GgufFile& file);

  TokenizerKind kind_ = TokenizerKind::SentencePiece;
  std::string pre_;
  std::vector<char> arena_;      // all token texts back to back; a vector so moves keep views
  std::vector<size_t> offsets_;  // size() + 1 offsets into arena_
  std::vector<TokenType> types_;
  std::vector<float> scores_;  // empty when the file has none
  std::unordered_map<std::string_view, TokenId> index_;
  size_t max_token_bytes_ = 0;
  SpecialTokenIds special_;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  std::vector<std::pair<TokenId, TokenId>> merges_;
};

}  // namespace ondol::engine
