#include "engine/tokenizer/vocab.h"

#include <algorithm>

#include <fmt/format.h>

namespace ondol::engine {
namespace {

// Token ids are int32 everywhere in the engine; a vocabulary beyond this is corrupt.
constexpr size_t kMaxVocabSize = size_t{1} << 24;

// Metadata key -> field of SpecialTokenIds.
struct SpecialKey {
  std::string_view key;
  TokenId SpecialTokenIds::*field;
};
constexpr SpecialKey kSpecialKeys[] = {
    {"tokenizer.ggml.bos_token_id", &SpecialTokenIds::bos},
    {"tokenizer.ggml.eos_token_id", &SpecialTokenIds::eos},
    {"tokenizer.ggml.eot_token_id", &SpecialTokenIds::eot},
    {"tokenizer.ggml.eom_token_id", &SpecialTokenIds::eom},
    {"tokenizer.ggml.unknown_token_id", &SpecialTokenIds::unk},
    {"tokenizer.ggml.seperator_token_id", &SpecialTokenIds::sep},  // sic: the GGUF key
    {"tokenizer.ggml.padding_token_id", &SpecialTokenIds::pad},
    {"tokenizer.ggml.cls_token_id", &SpecialTokenIds::cls},
    {"tokenizer.ggml.mask_token_id", &SpecialTokenIds::mask},
};

}  // namespace

Result<Vocab> Vocab::from_gguf(const GgufFile& file) {
  Vocab vocab;
  Result<std::string_view> model = file.get_string("tokenizer.ggml.model");
  if (!model) return model.error();
  if (*model == "llama") {
    vocab.kind_ = TokenizerKind::SentencePiece;
  } else if (*model == "gpt2") {
    vocab.kind_ = TokenizerKind::BytePair;
  } else if (*model == "bert") {
    vocab.kind_ = TokenizerKind::WordPiece;
  } else {
    return make_error(
        fmt::format("unsupported tokenizer model '{}' (supported: llama, gpt2, bert)", *model));
  }
  Result<std::string_view> pre = file.get_string_or("tokenizer.ggml.pre", "default");
  if (!pre) return pre.error();
  vocab.pre_ = std::string(*pre);

  if (Status s = vocab.load_tokens(file); !s) return s.error();
  if (Status s = vocab.load_special(file); !s) return s.error();
  if (vocab.kind_ == TokenizerKind::BytePair) {
    if (Status s = vocab.load_merges(file); !s) return s.error();
  }
  return vocab;
}

Status Vocab::load_tokens(const GgufFile& file) {
  Result<std::span<const std::string_view>> tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) return tokens.error();
  const size_t n = tokens->size();
  if (n == 0 || n > kMaxVocabSize) {
    return make_error(fmt::format("vocabulary of {} tokens (1 to {} allowed)", n, kMaxVocabSize));
  }
  size_t total = 0;
  for (std::string_view t : *tokens) total += t.size();
  arena_.reserve(total);
  offsets_.reserve(n + 1);
  offsets_.push_back(0);
  for (std::string_view t : *tokens) {
    arena_.insert(arena_.end(), t.begin(), t.end());
    offsets_.push_back(arena_.size());
    max_token_bytes_ = std::max(max_token_bytes_, t.size());
  }

  types_.assign(n, TokenType::Normal);
  if (file.has("tokenizer.ggml.token_type")) {
    Result<std::vector<int32_t>> types = file.get_i32_array("tokenizer.ggml.token_type");
    if (!types) return types.error();
    if (types->size() != n) {
      return make_error(
          fmt::format("tokenizer.ggml.token_type has {} entries for {} tokens", types->size(), n));
    }
    for (size_t i = 0; i < n; ++i) {
      const int32_t t = (*types)[i];
      // Unknown type values are treated as normal tokens, as the original tokenizers do.
      types_[i] = t >= 1 && t <= 6 ? static_cast<TokenType>(t) : TokenType::Normal;
    }
  }
  if (file.has("tokenizer.ggml.scores")) {
    Result<std::vector<float>> scores = file.get_f32_array("tokenizer.ggml.scores");
    if (!scores) return scores.error();
    if (scores->size() != n) {
      return make_error(
          fmt::format("tokenizer.ggml.scores has {} entries for {} tokens", scores->size(), n));
    }
    scores_ = std::move(*scores);
  }
  index_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // On duplicate texts the first id wins, so lookups are stable whatever follows.
    index_.emplace(text(static_cast<TokenId>(i)), static_cast<TokenId>(i));
  }
  return Ok{};
}

Status Vocab::load_special(const GgufFile& file) {
  // Defaults of the original tokenizers when the file does not say.
  switch (kind_) {
    case TokenizerKind::SentencePiece:
      special_.unk = 0;
      special_.bos = 1;
      special_.eos = 2;
      add_bos_ = true;
      add_space_prefix_ = true;
      break;
    case TokenizerKind::BytePair:
      break;
    case TokenizerKind::WordPiece:
      add_bos_ = true;  // [CLS] text [SEP]
      add_eos_ = true;
      break;
  }
  for (const SpecialKey& k : kSpecialKeys) {
    if (!file.has(k.key)) continue;
    Result<uint32_t> id = file.get_u32(k.key);
    if (!id) return id.error();
    // Writers store -1 (as u32) for "none"; any id outside the vocabulary means the same.
    special_.*k.field = *id < size() ? static_cast<TokenId>(*id) : kNoToken;
  }
  if (kind_ == TokenizerKind::WordPiece) {
    if (special_.bos == kNoToken) special_.bos = special_.cls;
    if (special_.eos == kNoToken) special_.eos = special_.sep;
  }
  if (kind_ == TokenizerKind::SentencePiece) {
    for (TokenId* id : {&special_.unk, &special_.bos, &special_.eos}) {
      if (!contains(*id)) *id = kNoToken;
    }
  }
  Result<bool> add_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", add_bos_);
  Result<bool> add_eos = file.get_bool_or("tokenizer.ggml.add_eos_token", add_eos_);
  Result<bool> add_space = file.get_bool_or("tokenizer.ggml.add_space_prefix", add_space_prefix_);
  if (!add_bos) return add_bos.error();
  if (!add_eos) return add_eos.error();
  if (!add_space) return add_space.error();
  add_bos_ = *add_bos && special_.bos != kNoToken;
  add_eos_ = *add_eos && special_.eos != kNoToken;
  add_space_prefix_ = *add_space;
  return Ok{};
}

Status Vocab::load_merges(const GgufFile& file) {
  Result<std::span<const std::string_view>> merges = file.get_string_array("tokenizer.ggml.merges");
  if (!merges) return merges.error();
  merges_.reserve(merges->size());
  for (std::string_view merge : *merges) {
    // "left right"; the search starts at 1 so that a left part could itself be a space.
    const size_t space = merge.find(' ', 1);
    if (space == std::string_view::npos) {
      return make_error(fmt::format("malformed BPE merge '{}'", merge));
    }
    const TokenId left = find(merge.substr(0, space));
    const TokenId right = find(merge.substr(space + 1));
    // A merge whose parts are not tokens can never apply; keep the rank numbering anyway.
    merges_.emplace_back(left, right);
  }
  return Ok{};
}

}  // namespace ondol::engine
