// PreTokenizer: splits text into the words a byte-level BPE vocabulary was trained on, by the
// Unicode regular expressions the vocabulary's tokenizer config names (tokenizer.ggml.pre).
// Each pattern splits the pieces the previous one produced; matches and the text between them
// both become pieces ("isolated" splitting). Patterns run on ICU's regex engine, which has the
// Unicode categories (\p{L}, \p{N}, \p{P}) and lookahead that std::regex lacks; the GPT-2,
// llama3 and qwen2 patterns run on hand-written matchers instead (builtin_pattern.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ondol::engine {

struct PreTokenizerSpec {
  std::vector<std::string> patterns;  // applied in order
  // The vocabulary keeps whole words that are tokens even where merges would split them
  // (tokenizer.json "ignore_merges", the llama3 family).
  bool ignore_merges = false;
  // Run the GPT-2/llama3/qwen2 patterns with their hand-written matchers (builtin_pattern.h)
  // instead of the regex engine; off only to compare the two in tests.
  bool use_builtin_matchers = true;
};

// The spec of a tokenizer.ggml.pre name, or an error naming it.
Result<PreTokenizerSpec> pre_tokenizer_spec(std::string_view name);

class PreTokenizer {
 public:
  static Result<PreTokenizer> create(const PreTokenizerSpec& spec);

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Appends the pieces of `text` to `out`, as views into `text`, in order and covering it.
  // Thread-safe: each call matches with its own clones of the compiled patterns. Invalid
  // UTF-8 is matched as U+FFFD and stays inside the piece it falls in.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Compiled;
  explicit PreTokenizer(std::unique_ptr<Compiled> compiled);
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace ondol::engine
