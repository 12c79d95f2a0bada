#include "engine/tokenizer/pre_tokenizer.h"

#include <unicode/uregex.h>
#include <unicode/ustring.h>

#include <optional>
#include <utility>

#include <fmt/format.h>

#include "engine/tokenizer/builtin_pattern.h"
#include "engine/tokenizer/utf8.h"

namespace ondol::engine {
namespace {

// The split patterns of the tokenizer configs these vocabularies come from, written with
// \x{...} escapes where the original class lists literal characters (several of them are
// compatibility characters that would not survive Unicode normalisation of this source).

// GPT-2's ByteLevel pattern (HF adds a final |\s+, which the isolated split already covers).
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kPoro = R"( ?[^(\s|.,!?…。，、।۔،)]+)";

// DeepSeek LLM: cased letters of its Unicode tables, ASCII/CJK punctuation, CJK runs, numbers.
constexpr const char* kDeepseekLetters =
    R"(\s?[\x{41}-\x{5A}\x{61}-\x{7A}\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF})"
    R"(\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386})"
    R"(\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F})"
    R"(\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA})"
    R"(\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15})"
    R"(\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})"
    R"(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4})"
    R"(\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4})"
    R"(\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124})"
    R"(\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})"
    R"(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
    R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17})"
    R"(\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3})"
    R"(\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";
constexpr const char* kDeepseekPunctuation =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
constexpr const char* kCjkRuns = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

struct NamedSpec {
  std::initializer_list<std::string_view> names;
  std::initializer_list<const char*> patterns;
  bool ignore_merges;
};

const NamedSpec kSpecs[] = {
    {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, false},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
     {kLlama3},
     true},
    {{"dbrx", "smaug-bpe", "chatglm-bpe"}, {kLlama3}, false},
    {{"deepseek-llm"},
     {R"([\r\n])", kDeepseekLetters, kDeepseekPunctuation, R"(\s+$)", kCjkRuns, R"(\p{N}+)"},
     false},
    {{"deepseek-coder"},
     {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkRuns, R"(\p{N})"},
     false},
    {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, false},
    {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
     {R"(\p{N})", kGpt2},
     false},
    {{"gpt-2", "gpt2", "mpt", "olmo", "jais", "phi-2", "jina-es", "jina-de", "gigachat",
      "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "trillion",
      "granite-docling"},
     {kGpt2},
     false},
    {{"qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", "megrez"}, {kQwen2}, false},
    {{"poro-chat", "bloom", "gpt3-finnish"}, {kPoro}, false},
    {{"viking"}, {kPoro, R"(\p{N})"}, false},
    {{"tekken"}, {kTekken}, true},
    {{"gpt-4o", "minimax-m2"}, {kGpt4o}, false},
};

// ICU's \s is [\t\n\f\r\p{Z}], which misses U+000B and U+0085; the original engines use the
// Unicode White_Space property, so \s and \S are rewritten to it.
std::string with_unicode_whitespace(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        out += R"(\p{White_Space})";
      } else if (next == 'S') {
        out += R"(\P{White_Space})";
      } else {
        out += pattern.substr(i, 2);
      }
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

// The code points of a UTF-8 text, and for each the byte offset it starts at (plus the end).
// Malformed bytes become U+FFFD and keep their byte span, so pieces map back exactly.
void decode_text(std::string_view text, std::vector<char32_t>& cps,
                 std::vector<uint32_t>& byte_at) {
  cps.clear();
  byte_at.clear();
  for (size_t i = 0; i < text.size();) {
    const utf8::Decoded d = utf8::decode(text.substr(i));
    cps.push_back(d.status == utf8::Status::Valid ? d.code_point : utf8::kReplacement);
    byte_at.push_back(static_cast<uint32_t>(i));
    i += d.length;
  }
  byte_at.push_back(static_cast<uint32_t>(text.size()));
}

// UTF-16 units of code points, with the unit index of every code point (plus the end) and the
// code point index of every unit boundary, for handing pieces to ICU and back.
void to_utf16(const std::vector<char32_t>& cps, std::u16string& units,
              std::vector<int32_t>& unit_of_cp, std::vector<uint32_t>& cp_of_unit) {
  units.clear();
  unit_of_cp.clear();
  cp_of_unit.clear();
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t cp = cps[i];
    unit_of_cp.push_back(static_cast<int32_t>(units.size()));
    if (cp >= 0x10000) {
      units.push_back(static_cast<char16_t>(0xD800 + ((cp - 0x10000) >> 10)));
      units.push_back(static_cast<char16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF)));
      cp_of_unit.push_back(static_cast<uint32_t>(i));
    } else {
      units.push_back(static_cast<char16_t>(cp));
    }
    cp_of_unit.push_back(static_cast<uint32_t>(i));
  }
  unit_of_cp.push_back(static_cast<int32_t>(units.size()));
  cp_of_unit.push_back(static_cast<uint32_t>(cps.size()));
}

struct RegexCloser {
  void operator()(URegularExpression* re) const { uregex_close(re); }
};
using RegexPtr = std::unique_ptr<URegularExpression, RegexCloser>;

}  // namespace

struct PreTokenizer::Compiled {
  struct Step {
    std::optional<BuiltinPattern> builtin;
    RegexPtr regex;  // when not builtin
  };
  std::vector<Step> steps;
};

Result<PreTokenizerSpec> pre_tokenizer_spec(std::string_view name) {
  for (const NamedSpec& spec : kSpecs) {
    for (std::string_view n : spec.names) {
      if (n != name) continue;
      PreTokenizerSpec out;
      for (const char* p : spec.patterns) out.patterns.emplace_back(p);
      out.ignore_merges = spec.ignore_merges;
      return out;
    }
  }
  return make_error(fmt::format("unknown BPE pre-tokenizer '{}' (tokenizer.ggml.pre)", name));
}

PreTokenizer::PreTokenizer(std::unique_ptr<Compiled> compiled) : compiled_(std::move(compiled)) {}
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

Result<PreTokenizer> PreTokenizer::create(const PreTokenizerSpec& spec) {
  auto compiled = std::make_unique<Compiled>();
  for (const std::string& pattern : spec.patterns) {
    if (spec.use_builtin_matchers) {
      if (std::optional<BuiltinPattern> builtin = builtin_pattern_for(pattern)) {
        compiled->steps.push_back(Compiled::Step{builtin, nullptr});
        continue;
      }
    }
    std::vector<char32_t> cps;
    std::vector<uint32_t> unused_bytes;
    decode_text(with_unicode_whitespace(pattern), cps, unused_bytes);
    std::u16string pattern16;
    std::vector<int32_t> unused_units;
    std::vector<uint32_t> unused_cps;
    to_utf16(cps, pattern16, unused_units, unused_cps);
    UParseError parse_error{};
    UErrorCode status = U_ZERO_ERROR;
    RegexPtr re(uregex_open(pattern16.data(), static_cast<int32_t>(pattern16.size()), 0,
                            &parse_error, &status));
    if (U_FAILURE(status)) {
      return make_error(fmt::format("pre-tokenizer pattern '{}' does not compile: {} at offset {}",
                                    pattern, u_errorName(status), parse_error.offset));
    }
    compiled->steps.push_back(Compiled::Step{std::nullopt, std::move(re)});
  }
  return PreTokenizer(std::move(compiled));
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  std::vector<char32_t> cps;
  std::vector<uint32_t> byte_at;
  decode_text(text, cps, byte_at);
  const auto num_cps = static_cast<uint32_t>(cps.size());
  // UTF-16 copy for the regex engine, made only if a step needs it.
  std::u16string units;
  std::vector<int32_t> unit_of_cp;
  std::vector<uint32_t> cp_of_unit;

  // Pieces as code point [begin, end) ranges; each step refines the previous list.
  std::vector<std::pair<uint32_t, uint32_t>> pieces = {{0, num_cps}};
  std::vector<std::pair<uint32_t, uint32_t>> next;
  for (const Compiled::Step& step : compiled_->steps) {
    next.clear();
    if (step.builtin) {
      for (const auto& [begin, end] : pieces) {
        uint32_t gap = begin;
        for (uint32_t pos = begin; pos < end;) {
          const auto length =
              static_cast<uint32_t>(match_builtin(*step.builtin, cps.data(), pos, end));
          if (length == 0) {
            ++pos;
            continue;
          }
          if (pos > gap) next.emplace_back(gap, pos);
          next.emplace_back(pos, pos + length);
          pos += length;
          gap = pos;
        }
        if (gap < end) next.emplace_back(gap, end);
      }
      pieces.swap(next);
      continue;
    }
    if (units.empty()) to_utf16(cps, units, unit_of_cp, cp_of_unit);
    UErrorCode status = U_ZERO_ERROR;
    RegexPtr re(uregex_clone(step.regex.get(), &status));
    uregex_setText(re.get(), units.data(), static_cast<int32_t>(units.size()), &status);
    if (U_FAILURE(status)) return;  // out of memory
    for (const auto& [begin, end] : pieces) {
      // Each piece is matched on its own: lookahead and $ stop at its end.
      status = U_ZERO_ERROR;
      uregex_setRegion(re.get(), unit_of_cp[begin], unit_of_cp[end], &status);
      uint32_t pos = begin;
      while (U_SUCCESS(status) && uregex_findNext(re.get(), &status)) {
        const int32_t unit_begin = uregex_start(re.get(), 0, &status);
        const int32_t unit_end = uregex_end(re.get(), 0, &status);
        if (U_FAILURE(status) || unit_end <= unit_begin) continue;  // empty: splits nothing
        const uint32_t match_begin = cp_of_unit[unit_begin];
        const uint32_t match_end = cp_of_unit[unit_end];
        if (match_begin > pos) next.emplace_back(pos, match_begin);
        next.emplace_back(match_begin, match_end);
        pos = match_end;
      }
      if (pos < end) next.emplace_back(pos, end);
    }
    pieces.swap(next);
  }
  for (const auto& [begin, end] : pieces) {
    out.push_back(text.substr(byte_at[begin], byte_at[end] - byte_at[begin]));
  }
}

}  // namespace ondol::engine
