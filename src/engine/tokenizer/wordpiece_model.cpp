#include "engine/tokenizer/wordpiece_model.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "engine/tokenizer/spm_model.h"
#include "engine/tokenizer/utf8.h"

namespace ondol::engine {
namespace {

// The CJK Unified Ideograph blocks BERT spaces out (tokenize_chinese_chars).
bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
         u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}

// Categories C* (control, format, unassigned, private use, surrogate), except \t \n \r.
bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_UNASSIGNED:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
      return true;
    default:
      return false;
  }
}

bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126)) {
    return true;  // ASCII symbols count as punctuation for BERT, e.g. $ + < = > ^ ` | ~
  }
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_CONNECTOR_PUNCTUATION:
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

void append_utf16(std::u16string& out, char32_t c) {
  if (c >= 0x10000) {
    out.push_back(static_cast<char16_t>(0xD800 + ((c - 0x10000) >> 10)));
    out.push_back(static_cast<char16_t>(0xDC00 + ((c - 0x10000) & 0x3FF)));
  } else {
    out.push_back(static_cast<char16_t>(c));
  }
}

// BERT normalisation of `text` as UTF-16: cleaned, CJK spaced, NFD without combining marks,
// lowercased. Returns false only if ICU fails (out of memory).
bool normalize(std::string_view text, std::u16string& out) {
  std::u16string cleaned;
  cleaned.reserve(text.size());
  while (!text.empty()) {
    const utf8::Decoded d = utf8::decode(text);
    text.remove_prefix(d.length);
    if (d.status != utf8::Status::Valid) continue;  // BERT drops U+FFFD
    const char32_t c = d.code_point;
    if (c == 0 || is_control(c)) continue;
    if (is_whitespace(c)) {
      cleaned.push_back(u' ');
    } else if (is_cjk_ideograph(c)) {
      cleaned.push_back(u' ');
      append_utf16(cleaned, c);
      cleaned.push_back(u' ');
    } else {
      append_utf16(cleaned, c);
    }
  }
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* nfd = unorm2_getNFDInstance(&status);
  if (U_FAILURE(status)) return false;
  std::u16string decomposed(cleaned.size() * 3 + 8, u'\0');
  int32_t length =
      unorm2_normalize(nfd, cleaned.data(), static_cast<int32_t>(cleaned.size()), decomposed.data(),
                       static_cast<int32_t>(decomposed.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    status = U_ZERO_ERROR;
    decomposed.resize(static_cast<size_t>(length));
    length = unorm2_normalize(nfd, cleaned.data(), static_cast<int32_t>(cleaned.size()),
                              decomposed.data(), length, &status);
  }
  if (U_FAILURE(status)) return false;
  decomposed.resize(static_cast<size_t>(length));
  std::u16string stripped;
  stripped.reserve(decomposed.size());
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U16_NEXT(decomposed.data(), i, length, c);
    if (u_charType(c) != U_NON_SPACING_MARK) append_utf16(stripped, static_cast<char32_t>(c));
  }
  out.assign(stripped.size() + 8, u'\0');
  length = u_strToLower(out.data(), static_cast<int32_t>(out.size()), stripped.data(),
                        static_cast<int32_t>(stripped.size()), "", &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    status = U_ZERO_ERROR;
    out.assign(static_cast<size_t>(length), u'\0');
    length = u_strToLower(out.data(), length, stripped.data(),
                          static_cast<int32_t>(stripped.size()), "", &status);
  }
  if (U_FAILURE(status)) return false;
  out.resize(static_cast<size_t>(length));
  return true;
}

}  // namespace

void WordPieceModel::encode(std::string_view text, bool /*starts_segment*/,
                            std::vector<TokenId>& out) const {
  std::u16string normalized;
  if (!normalize(text, normalized)) return;
  // Words: runs between whitespace, with every punctuation character a word of its own.
  std::string word;
  std::string scratch;
  const auto length = static_cast<int32_t>(normalized.size());
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U16_NEXT(normalized.data(), i, length, c);
    const auto cp = static_cast<char32_t>(c);
    if (is_whitespace(cp)) {
      encode_word(word, scratch, out);
      word.clear();
    } else if (is_punctuation(cp)) {
      encode_word(word, scratch, out);
      word.clear();
      utf8::append(word, cp);
      encode_word(word, scratch, out);
      word.clear();
    } else {
      utf8::append(word, cp);
    }
  }
  encode_word(word, scratch, out);
}

void WordPieceModel::encode_word(std::string_view word, std::string& scratch,
                                 std::vector<TokenId>& out) const {
  if (word.empty()) return;
  size_t num_chars = 0;
  for (char c : word) num_chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  const TokenId unk = vocab_.special().unk;
  auto emit_unk = [&] {
    if (unk != kNoToken) out.push_back(unk);
  };
  if (num_chars > kMaxCharsPerWord) return emit_unk();

  const size_t first_new = out.size();
  size_t start = 0;
  while (start < word.size()) {
    TokenId match = kNoToken;
    size_t match_end = start;
    const std::string_view prefix = start == 0 ? SpmModel::kSpaceMarker : std::string_view();
    // Longest first; ends only at character boundaries.
    for (size_t end = word.size(); end > start; --end) {
      if (end < word.size() && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) continue;
      if (prefix.size() + (end - start) > vocab_.max_token_bytes()) continue;
      scratch.assign(prefix);
      scratch.append(word.substr(start, end - start));
      const TokenId id = vocab_.find(scratch);
      if (id != kNoToken &&
          (vocab_.type(id) == TokenType::Normal || vocab_.type(id) == TokenType::UserDefined)) {
        match = id;
        match_end = end;
        break;
      }
    }
    if (match == kNoToken) {
      out.resize(first_new);  // the whole word is unknown, not just its tail
      return emit_unk();
    }
    out.push_back(match);
    start = match_end;
  }
}

}  // namespace ondol::engine
