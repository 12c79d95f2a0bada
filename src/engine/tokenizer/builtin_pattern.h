// BuiltinPattern: hand-written matchers for the split patterns most vocabularies use (GPT-2's,
// llama3's and qwen2's), a few times faster than running them through the regex engine. Each
// behaves exactly like its regex (leftmost alternative wins, with the regex's backtracking
// worked out per alternative); pre_tokenizer_test.cpp checks them against ICU on random text.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace ondol::engine {

enum class BuiltinPattern {
  Gpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
  Llama3,  // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|...
  Qwen2,   // as Llama3 with single digits
};

// The builtin matcher for a pattern's exact text, if there is one.
std::optional<BuiltinPattern> builtin_pattern_for(std::string_view pattern);

// Length in code points of the match starting exactly at `pos` within cps[0, end), or 0.
size_t match_builtin(BuiltinPattern pattern, const char32_t* cps, size_t pos, size_t end);

}  // namespace ondol::engine
