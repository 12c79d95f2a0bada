#include "engine/tokenizer/incremental_detokenizer.h"

#include "engine/tokenizer/utf8.h"

namespace ondol::engine {

void IncrementalDetokenizer::push(TokenId id, std::string& out) {
  std::string_view piece = tokenizer_.piece(id, options_.render_special);
  if (piece.empty()) return;
  if (first_ && options_.strip_leading_space && tokenizer_.adds_space_prefix() &&
      tokenizer_.vocab().type(id) == TokenType::Normal && piece.front() == ' ') {
    piece.remove_prefix(1);
  }
  first_ = false;
  pending_.append(piece);  // capacity is kept, so steady state allocates nothing

  std::string_view rest = pending_;
  size_t released = 0;
  while (!rest.empty()) {
    const utf8::Decoded d = utf8::decode(rest);
    if (d.status == utf8::Status::Incomplete) break;  // wait for the next token
    if (d.status == utf8::Status::Valid) {
      out.append(rest.substr(0, d.length));
    } else {
      out.append(utf8::kReplacementUtf8);
    }
    rest.remove_prefix(d.length);
    released += d.length;
  }
  pending_.erase(0, released);
}

void IncrementalDetokenizer::flush(std::string& out) {
  if (!pending_.empty()) out.append(utf8::kReplacementUtf8);
  pending_.clear();
}

}  // namespace ondol::engine
