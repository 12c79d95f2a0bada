#include "engine/tokenizer/byte_level.h"

#include <array>

#include "engine/tokenizer/utf8.h"

namespace ondol::engine::byte_level {
namespace {

constexpr char32_t kFirstRemapped = 0x100;

bool maps_to_itself(uint32_t b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// 68 bytes are remapped (0x00-0x20, 0x7F-0xA0, 0xAD), so code points stop below U+0144.
constexpr char32_t kEndOfAlphabet = kFirstRemapped + 68;

struct Table {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<int16_t, kEndOfAlphabet> cp_to_byte{};
  Table() {
    cp_to_byte.fill(-1);
    char32_t next = kFirstRemapped;
    for (uint32_t b = 0; b < 256; ++b) {
      byte_to_cp[b] = maps_to_itself(b) ? b : next++;
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const Table& table() {
  static const Table t;
  return t;
}

}  // namespace

char32_t encode_byte(uint8_t byte) {
  return table().byte_to_cp[byte];
}

std::optional<uint8_t> decode_code_point(char32_t cp) {
  if (cp >= kEndOfAlphabet) return std::nullopt;
  const int16_t byte = table().cp_to_byte[cp];
  if (byte < 0) return std::nullopt;
  return static_cast<uint8_t>(byte);
}

void encode(std::string_view bytes, std::string& out) {
  for (char c : bytes) utf8::append(out, encode_byte(static_cast<uint8_t>(c)));
}

void decode(std::string_view text, std::string& out) {
  while (!text.empty()) {
    const utf8::Decoded d = utf8::decode(text);
    const std::optional<uint8_t> byte =
        d.status == utf8::Status::Valid ? decode_code_point(d.code_point) : std::nullopt;
    if (byte) {
      out.push_back(static_cast<char>(*byte));
    } else {
      out.append(text.substr(0, d.length));
    }
    text.remove_prefix(d.length);
  }
}

}  // namespace ondol::engine::byte_level
