// IncrementalDetokenizer: turns a stream of generated token ids into text that is always valid
// UTF-8, for streaming responses. A token may carry only part of a character (byte-fallback
// and byte-level vocabularies split emoji over several tokens), so the bytes of an incomplete
// trailing sequence are held back until the token that completes them arrives. Bytes that can
// never become valid are released as U+FFFD. One instance per sequence; not thread-safe.
#pragma once

#include <string>

#include "engine/tokenizer/tokenizer.h"

namespace ondol::engine {

struct DetokenizerOptions {
  bool render_special = false;
  // Drop the leading space of the first token (when the text starts a document, not when it
  // continues a prompt).
  bool strip_leading_space = false;
};

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, DetokenizerOptions options = {})
      : tokenizer_(tokenizer), options_(options) {}

  // Appends to `out` the text completed by `id` (possibly nothing).
  void push(TokenId id, std::string& out);
  // Appends what is still held back (an incomplete sequence, as U+FFFD); ends the stream.
  void flush(std::string& out);
  size_t num_pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  DetokenizerOptions options_;
  std::string pending_;  // bytes not yet released; at most one incomplete sequence (< 4 bytes)
  bool first_ = true;
};

}  // namespace ondol::engine
