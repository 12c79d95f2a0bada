#include "engine/tokenizer/utf8.h"

namespace ondol::engine::utf8 {

uint32_t sequence_length(unsigned char lead) {
  if (lead < 0xC2) return 1;  // ASCII, continuation bytes, overlong leads C0/C1
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 1;  // F5..FF never lead
}

Decoded decode(std::string_view s) {
  const auto lead = static_cast<unsigned char>(s[0]);
  if (lead < 0x80) return {lead, 1, Status::Valid};
  const uint32_t length = sequence_length(lead);
  if (length == 1) return {kReplacement, 1, Status::Invalid};
  // Allowed range of the second byte (RFC 3629 table), which rules out overlongs, surrogates
  // and code points above U+10FFFF before the whole sequence is read.
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (lead == 0xE0) lo = 0xA0;
  if (lead == 0xED) hi = 0x9F;
  if (lead == 0xF0) lo = 0x90;
  if (lead == 0xF4) hi = 0x8F;
  char32_t cp = lead & (0xFF >> (length + 1));
  for (uint32_t i = 1; i < length; ++i) {
    if (i >= s.size()) return {kReplacement, i, Status::Incomplete};
    const auto c = static_cast<unsigned char>(s[i]);
    const unsigned char min = i == 1 ? lo : 0x80;
    const unsigned char max = i == 1 ? hi : 0xBF;
    if (c < min || c > max) return {kReplacement, i, Status::Invalid};
    cp = (cp << 6) | (c & 0x3F);
  }
  return {cp, length, Status::Valid};
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid(std::string_view s) {
  while (!s.empty()) {
    const Decoded d = decode(s);
    if (d.status != Status::Valid) return false;
    s.remove_prefix(d.length);
  }
  return true;
}

}  // namespace ondol::engine::utf8
