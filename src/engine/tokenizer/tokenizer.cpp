#include "engine/tokenizer/tokenizer.h"

#include <utility>

#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/spm_model.h"
#include "engine/tokenizer/wordpiece_model.h"

namespace ondol::engine {
namespace {

// Control tokens that end a turn in common chat templates, besides the ids the file names.
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>",         "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>",      "<|end_of_text|>", "<|EOT|>",       "<｜end▁of▁sentence｜>",
    "<|return|>", "<|call|>",
};

// "<0x0A>" -> 0x0A; -1 if the text is not a byte token's.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value |= c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value |= c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return value;
}

// SentencePiece and WordPiece texts spell spaces as "▁".
void append_unescaped(std::string_view text, std::string& out) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t marker = text.find(SpmModel::kSpaceMarker, pos);
    if (marker == std::string_view::npos) break;
    out.append(text.substr(pos, marker - pos));
    out.push_back(' ');
    pos = marker + SpmModel::kSpaceMarker.size();
  }
  out.append(text.substr(pos));
}

}  // namespace

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
  Result<Vocab> vocab = Vocab::from_gguf(file);
  if (!vocab) return vocab.error();
  Tokenizer t;
  t.vocab_ = std::make_unique<Vocab>(std::move(vocab).value());
  const Vocab& v = *t.vocab_;
  switch (v.kind()) {
    case TokenizerKind::SentencePiece:
      t.model_ = std::make_unique<SpmModel>(v);
      t.strips_leading_space_ = v.add_space_prefix();
      break;
    case TokenizerKind::BytePair: {
      Result<PreTokenizerSpec> spec = pre_tokenizer_spec(v.pre_tokenizer());
      if (!spec) return spec.error();
      Result<PreTokenizer> pre = PreTokenizer::create(*spec);
      if (!pre) return pre.error();
      t.model_ = std::make_unique<BpeModel>(v, std::move(pre).value(), spec->ignore_merges);
      break;
    }
    case TokenizerKind::WordPiece:
      t.model_ = std::make_unique<WordPieceModel>(v);
      t.strips_leading_space_ = true;
      break;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const auto id = static_cast<TokenId>(i);
    const TokenType type = v.type(id);
    if (type == TokenType::Control || type == TokenType::UserDefined ||
        type == TokenType::Unknown) {
      t.special_matcher_.add(v.text(id), id, type == TokenType::UserDefined);
    }
  }
  t.build_pieces();
  return t;
}

void Tokenizer::build_pieces() {
  const Vocab& v = *vocab_;
  const size_t n = v.size();
  std::string piece;
  piece_offsets_.reserve(n + 1);
  piece_offsets_.push_back(0);
  hidden_.assign(n, false);
  end_of_generation_.assign(n, false);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<TokenId>(i);
    const std::string_view text = v.text(id);
    const TokenType type = v.type(id);
    piece.clear();
    switch (type) {
      case TokenType::Control:
      case TokenType::Unknown:
        hidden_[i] = true;
        piece.assign(text);
        break;
      case TokenType::UserDefined:
        piece.assign(text);  // added tokens are stored as the text they match
        break;
      case TokenType::Byte: {
        const int byte = parse_byte_token(text);
        if (byte >= 0) {
          piece.push_back(static_cast<char>(byte));
        } else {
          piece.assign(text);
        }
        break;
      }
      default:
        if (v.kind() == TokenizerKind::BytePair) {
          byte_level::decode(text, piece);
        } else {
          append_unescaped(text, piece);
        }
        break;
    }
    piece_bytes_.insert(piece_bytes_.end(), piece.begin(), piece.end());
    piece_offsets_.push_back(static_cast<uint32_t>(piece_bytes_.size()));
    if (type == TokenType::Control || type == TokenType::UserDefined) {
      for (std::string_view eot : kEndOfTurnTexts) {
        if (text == eot) end_of_generation_[i] = true;
      }
    }
  }
  const SpecialTokenIds& s = v.special();
  for (TokenId id : {s.eos, s.eot, s.eom}) {
    if (v.contains(id)) end_of_generation_[static_cast<size_t>(id)] = true;
  }
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, EncodeOptions options) const {
  std::vector<TokenId> out;
  encode(text, options, out);
  return out;
}

void Tokenizer::encode(std::string_view text, EncodeOptions options,
                       std::vector<TokenId>& out) const {
  const Vocab& v = *vocab_;
  if (options.add_special && v.add_bos()) out.push_back(v.special().bos);
  std::vector<SpecialTokenMatcher::Fragment> fragments;
  special_matcher_.split(text, options.parse_special, fragments);
  bool starts_segment = true;
  for (const SpecialTokenMatcher::Fragment& f : fragments) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      starts_segment = true;
    } else {
      model_->encode(f.text, starts_segment, out);
      starts_segment = false;
    }
  }
  if (options.add_special && v.add_eos()) out.push_back(v.special().eos);
}

std::string_view Tokenizer::piece(TokenId id, bool render_special) const {
  if (!vocab_->contains(id)) return {};
  const auto i = static_cast<size_t>(id);
  if (hidden_[i] && !render_special) return {};
  return {piece_bytes_.data() + piece_offsets_[i], piece_offsets_[i + 1] - piece_offsets_[i]};
}

std::string Tokenizer::decode(std::span<const TokenId> ids, DecodeOptions options) const {
  std::string out;
  bool first = true;
  for (TokenId id : ids) {
    std::string_view p = piece(id, options.render_special);
    if (p.empty()) continue;
    if (first && options.strip_leading_space && strips_leading_space_ &&
        vocab_->type(id) == TokenType::Normal && p.front() == ' ') {
      p.remove_prefix(1);
    }
    first = false;
    out.append(p);
  }
  return out;
}

}  // namespace ondol::engine
