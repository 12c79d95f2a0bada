#include "engine/tokenizer/bpe_model.h"

#include <algorithm>
#include <string>
#include <utility>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/utf8.h"

namespace ondol::engine {
namespace {

uint64_t pair_key(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct Symbol {
  TokenId id;  // kNoToken for a byte the vocabulary cannot spell
  int32_t prev;
  int32_t next;
  uint32_t begin;   // byte range of the word this symbol covers
  uint32_t length;  // 0 once merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t left;
  int32_t right;
  TokenId left_id;  // ids when queued, to detect stale entries
  TokenId right_id;
};

// Lowest rank first; among equal ranks (the same pair twice), the leftmost first.
struct LowerPriority {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

struct BpeModel::Scratch {
  std::vector<std::string_view> words;
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;  // a binary heap under LowerPriority
  std::string encoded;
};

BpeModel::BpeModel(const Vocab& vocab, PreTokenizer pre_tokenizer, bool ignore_merges)
    : vocab_(vocab), pre_tokenizer_(std::move(pre_tokenizer)), ignore_merges_(ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8::append(ch, byte_level::encode_byte(static_cast<uint8_t>(b)));
    // Only normal tokens spell bytes: an added token with the same text stands for the text
    // itself (deepseek adds "õ" etc.), and bytes no token spells are dropped (e.g. 0xFF, which
    // valid UTF-8 never contains and many vocabularies omit).
    const TokenId id = vocab_.find(ch);
    byte_tokens_[b] = id != kNoToken && vocab_.type(id) == TokenType::Normal ? id : kNoToken;
  }
  const auto& merges = vocab_.merges();
  merges_.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [left, right] = merges[rank];
    if (left == kNoToken || right == kNoToken) continue;
    merged.assign(vocab_.text(left));
    merged += vocab_.text(right);
    const TokenId id = vocab_.find(merged);
    if (id == kNoToken) continue;  // a merge into no token can never be emitted
    merges_.emplace(pair_key(left, right), Merge{static_cast<int32_t>(rank), id});
  }
}

const BpeModel::Merge* BpeModel::find_merge(TokenId left, TokenId right) const {
  if (left == kNoToken || right == kNoToken) return nullptr;
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::encode(std::string_view text, bool /*starts_segment*/,
                      std::vector<TokenId>& out) const {
  Scratch scratch;
  pre_tokenizer_.split(text, scratch.words);
  for (std::string_view word : scratch.words) encode_word(word, scratch, out);
}

void BpeModel::encode_word(std::string_view word, Scratch& scratch,
                           std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    scratch.encoded.clear();
    byte_level::encode(word, scratch.encoded);
    if (const TokenId id = vocab_.find(scratch.encoded); id != kNoToken) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol>& symbols = scratch.symbols;
  symbols.resize(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    const auto index = static_cast<int32_t>(i);
    symbols[i] = Symbol{byte_tokens_[static_cast<uint8_t>(word[i])], index - 1, index + 1,
                        static_cast<uint32_t>(i), 1};
  }
  symbols.back().next = -1;

  std::vector<Candidate>& heap = scratch.heap;
  heap.clear();
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Merge* merge = find_merge(symbols[left].id, symbols[right].id);
    if (merge != nullptr) {
      heap.push_back(Candidate{merge->rank, left, right, symbols[left].id, symbols[right].id});
      std::push_heap(heap.begin(), heap.end(), LowerPriority{});
    }
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), LowerPriority{});
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    if (left.length == 0 || right.length == 0 || left.next != c.right || left.id != c.left_id ||
        right.id != c.right_id) {
      continue;  // stale: a neighbour merged since this pair was queued
    }
    left.id = find_merge(left.id, right.id)->merged;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    try_add(left.prev, c.left);
    try_add(c.left, left.next);
  }

  // A byte without a token is dropped rather than mapped to <unk>: byte-level vocabularies
  // often name <|endoftext|> as their unknown token, and text must not end a document.
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    if (symbols[i].id != kNoToken) out.push_back(symbols[i].id);
  }
}

}  // namespace ondol::engine
