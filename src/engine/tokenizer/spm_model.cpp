#include "engine/tokenizer/spm_model.h"

#include <cstdio>
#include <queue>
#include <string>

#include "engine/tokenizer/utf8.h"

namespace ondol::engine {
namespace {

struct Symbol {
  uint32_t begin;   // byte offset in the escaped text
  uint32_t length;  // bytes; 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t length;  // bytes of the merged text when queued, to detect stale entries
};

// Highest score first; among equal scores, the leftmost pair first.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

SpmModel::SpmModel(const Vocab& vocab) : vocab_(vocab) {
  byte_tokens_.fill(kNoToken);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_tokens_[b] = vocab_.find(name);
  }
}

TokenId SpmModel::find_piece(std::string_view text) const {
  const TokenId id = vocab_.find(text);
  if (id == kNoToken) return kNoToken;
  const TokenType type = vocab_.type(id);
  return type == TokenType::Normal || type == TokenType::UserDefined ? id : kNoToken;
}

void SpmModel::encode(std::string_view raw, bool starts_segment, std::vector<TokenId>& out) const {
  std::string text;
  text.reserve(raw.size() * 2 + kSpaceMarker.size());
  if (starts_segment && vocab_.add_space_prefix()) text += kSpaceMarker;
  for (char c : raw) {
    if (c == ' ') {
      text += kSpaceMarker;
    } else {
      text += c;
    }
  }
  if (text.empty()) return;

  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const uint32_t length = utf8::decode(std::string_view(text).substr(i)).length;
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{static_cast<uint32_t>(i), length, index - 1, index + 1});
    i += length;
  }
  symbols.back().next = -1;

  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t length = symbols[left].length + symbols[right].length;
    const TokenId id = find_piece(std::string_view(text).substr(symbols[left].begin, length));
    if (id != kNoToken) queue.push(Bigram{vocab_.score(id), left, right, length});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Stale: one side was merged away or grew since this pair was queued.
    if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) {
      continue;
    }
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece =
        std::string_view(text).substr(symbols[i].begin, symbols[i].length);
    const TokenId id = find_piece(piece);
    if (id != kNoToken) {
      out.push_back(id);
      continue;
    }
    // Byte fallback: one <0xXX> per byte of the character; <unk> when the vocabulary has no
    // byte tokens.
    bool all_bytes = true;
    for (char c : piece) all_bytes = all_bytes && byte_tokens_[static_cast<uint8_t>(c)] != kNoToken;
    if (all_bytes) {
      for (char c : piece) out.push_back(byte_tokens_[static_cast<uint8_t>(c)]);
    } else if (vocab_.special().unk != kNoToken) {
      out.push_back(vocab_.special().unk);
    }
  }
}

}  // namespace ondol::engine
