#include "engine/tokenizer/special_token_matcher.h"

namespace ondol::engine {
namespace {

constexpr uint32_t kNoNode = 0;  // the root is never anyone's child

uint64_t edge_key(uint32_t node, unsigned char byte) {
  return (static_cast<uint64_t>(node) << 8) | byte;
}

}  // namespace

uint32_t SpecialTokenMatcher::child(uint32_t node, unsigned char byte) const {
  auto it = edges_.find(edge_key(node, byte));
  return it == edges_.end() ? kNoNode : it->second;
}

void SpecialTokenMatcher::add(std::string_view text, TokenId id, bool always) {
  if (text.empty()) return;
  uint32_t node = 0;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    uint32_t next = child(node, byte);
    if (next == kNoNode) {
      next = static_cast<uint32_t>(nodes_.size());
      nodes_.push_back(Node{});
      edges_.emplace(edge_key(node, byte), next);
    }
    node = next;
  }
  // The first id registered for a text keeps it.
  if (nodes_[node].token == kNoToken) nodes_[node] = Node{id, always};
  can_start_[static_cast<unsigned char>(text[0])] = true;
}

void SpecialTokenMatcher::split(std::string_view text, bool parse_special,
                                std::vector<Fragment>& out) const {
  size_t raw_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!can_start_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    size_t match_length = 0;
    TokenId match = kNoToken;
    uint32_t node = 0;
    for (size_t j = i; j < text.size(); ++j) {
      node = child(node, static_cast<unsigned char>(text[j]));
      if (node == kNoNode) break;
      const Node& n = nodes_[node];
      if (n.token != kNoToken && (n.always || parse_special)) {
        match = n.token;
        match_length = j + 1 - i;
      }
    }
    if (match == kNoToken) {
      ++i;
      continue;
    }
    if (i > raw_start) out.push_back({text.substr(raw_start, i - raw_start), kNoToken});
    out.push_back({text.substr(i, match_length), match});
    i += match_length;
    raw_start = i;
  }
  if (raw_start < text.size()) out.push_back({text.substr(raw_start), kNoToken});
}

}  // namespace ondol::engine
