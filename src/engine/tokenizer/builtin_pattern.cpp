#include "engine/tokenizer/builtin_pattern.h"

#include <unicode/uchar.h>

#include <array>
#include <cstdint>

namespace ondol::engine {
namespace {

// Exact pattern texts (kept in sync with pre_tokenizer.cpp, which passes them here).
constexpr std::string_view kGpt2Text =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3Text =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Text =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum Class : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

Class classify_slow(char32_t c) {
  if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE)) return kSpace;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return kLetter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return kNumber;
    default:
      return kOther;
  }
}

struct AsciiTable {
  std::array<Class, 128> classes{};
  AsciiTable() {
    for (char32_t c = 0; c < 128; ++c) classes[c] = classify_slow(c);
  }
};

Class classify(char32_t c) {
  static const AsciiTable ascii;
  return c < 128 ? ascii.classes[c] : classify_slow(c);
}

bool is_newline(char32_t c) {
  return c == '\r' || c == '\n';
}

// (?i) folds U+017F LATIN SMALL LETTER LONG S to 's'; no other character folds to t r e v m l d.
char32_t fold(char32_t c, bool ignore_case) {
  if (!ignore_case) return c;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 'a';
  if (c == 0x17F) return 's';
  return c;
}

// 's|'t|'re|'ve|'m|'ll|'d at pos.
size_t match_contraction(const char32_t* cps, size_t pos, size_t end, bool ignore_case) {
  if (cps[pos] != '\'' || pos + 1 >= end) return 0;
  const char32_t a = fold(cps[pos + 1], ignore_case);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= end) return 0;
  const char32_t b = fold(cps[pos + 2], ignore_case);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

size_t run_of(const char32_t* cps, size_t pos, size_t end, Class cls) {
  size_t j = pos;
  while (j < end && classify(cps[j]) == cls) ++j;
  return j - pos;
}

// " ?X+" for a class X that excludes the space: the optional space only helps when X follows.
size_t match_space_then_run(const char32_t* cps, size_t pos, size_t end, Class cls) {
  const size_t start = cps[pos] == ' ' ? pos + 1 : pos;
  const size_t n = start < end ? run_of(cps, start, end, cls) : 0;
  return n == 0 ? 0 : start + n - pos;
}

// \s+(?!\S): the whole whitespace run at the end of the piece, else all of it but the last
// character (which then precedes the next word).
size_t match_trailing_space(const char32_t* cps, size_t pos, size_t end) {
  const size_t n = run_of(cps, pos, end, kSpace);
  if (n == 0) return 0;
  if (pos + n == end) return n;
  return n - 1;
}

size_t match_gpt2(const char32_t* cps, size_t pos, size_t end) {
  if (size_t n = match_contraction(cps, pos, end, false)) return n;
  if (size_t n = match_space_then_run(cps, pos, end, kLetter)) return n;
  if (size_t n = match_space_then_run(cps, pos, end, kNumber)) return n;
  if (size_t n = match_space_then_run(cps, pos, end, kOther)) return n;
  return match_trailing_space(cps, pos, end);
}

size_t match_llama3(const char32_t* cps, size_t pos, size_t end, size_t max_digits) {
  if (size_t n = match_contraction(cps, pos, end, true)) return n;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  {
    const Class c = classify(cps[pos]);
    const size_t start = (c == kOther || c == kSpace) && !is_newline(cps[pos]) ? pos + 1 : pos;
    const size_t n = start < end ? run_of(cps, start, end, kLetter) : 0;
    if (n > 0) return start + n - pos;
  }
  // \p{N}{1,max}
  if (classify(cps[pos]) == kNumber) {
    size_t n = 1;
    while (n < max_digits && pos + n < end && classify(cps[pos + n]) == kNumber) ++n;
    return n;
  }
  // " ?[^\s\p{L}\p{N}]+[\r\n]*"
  if (size_t n = match_space_then_run(cps, pos, end, kOther)) {
    while (pos + n < end && is_newline(cps[pos + n])) ++n;
    return n;
  }
  const size_t spaces = run_of(cps, pos, end, kSpace);
  if (spaces == 0) return 0;
  // \s*[\r\n]+: up to and including the last newline of the whitespace run.
  for (size_t k = spaces; k > 0; --k) {
    if (is_newline(cps[pos + k - 1])) return k;
  }
  // \s+(?!\S), then \s+ for a lone space before a word.
  const size_t trailing = match_trailing_space(cps, pos, end);
  return trailing > 0 ? trailing : spaces;
}

}  // namespace

std::optional<BuiltinPattern> builtin_pattern_for(std::string_view pattern) {
  if (pattern == kGpt2Text) return BuiltinPattern::Gpt2;
  if (pattern == kLlama3Text) return BuiltinPattern::Llama3;
  if (pattern == kQwen2Text) return BuiltinPattern::Qwen2;
  return std::nullopt;
}

size_t match_builtin(BuiltinPattern pattern, const char32_t* cps, size_t pos, size_t end) {
  switch (pattern) {
    case BuiltinPattern::Gpt2:
      return match_gpt2(cps, pos, end);
    case BuiltinPattern::Llama3:
      return match_llama3(cps, pos, end, 3);
    case BuiltinPattern::Qwen2:
      return match_llama3(cps, pos, end, 1);
  }
  return 0;
}

}  // namespace ondol::engine
