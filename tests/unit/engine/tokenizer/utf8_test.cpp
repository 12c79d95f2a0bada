#include "engine/tokenizer/utf8.h"

#include <gtest/gtest.h>

#include "engine/tokenizer/byte_level.h"

namespace ondol::engine {
namespace {

using utf8::Status;

TEST(Utf8Test, DecodesWellFormedSequences) {
  EXPECT_EQ(utf8::decode("A").code_point, U'A');
  const utf8::Decoded two = utf8::decode("\xC3\xA4x");  // ä
  EXPECT_EQ(two.status, Status::Valid);
  EXPECT_EQ(two.code_point, U'\u00E4');
  EXPECT_EQ(two.length, 2u);
  EXPECT_EQ(utf8::decode("\xE2\x96\x81").code_point, U'\u2581');
  const utf8::Decoded four = utf8::decode("\xF0\x9F\xA6\x99");  // 🦙
  EXPECT_EQ(four.code_point, U'\U0001F999');
  EXPECT_EQ(four.length, 4u);
}

TEST(Utf8Test, SeparatesIncompleteFromInvalid) {
  EXPECT_EQ(utf8::decode("\xF0\x9F\xA6").status, Status::Incomplete);
  EXPECT_EQ(utf8::decode("\xF0\x9F\xA6").length, 3u);
  EXPECT_EQ(utf8::decode("\xE2").status, Status::Incomplete);
  EXPECT_EQ(utf8::decode("\x80").status, Status::Invalid);              // stray continuation
  EXPECT_EQ(utf8::decode("\xC0\x80").status, Status::Invalid);          // overlong NUL
  EXPECT_EQ(utf8::decode("\xE0\x80\x80").status, Status::Invalid);      // overlong
  EXPECT_EQ(utf8::decode("\xED\xA0\x80").status, Status::Invalid);      // surrogate
  EXPECT_EQ(utf8::decode("\xF4\x90\x80\x80").status, Status::Invalid);  // > U+10FFFF
  EXPECT_EQ(utf8::decode("\xF5").status, Status::Invalid);
  const utf8::Decoded cut = utf8::decode(
      "\xE2\x96"
      "A");  // interrupted by ASCII
  EXPECT_EQ(cut.status, Status::Invalid);
  EXPECT_EQ(cut.length, 2u);  // the maximal invalid prefix, so "A" is decoded next
  EXPECT_TRUE(utf8::is_valid("héllo 🦙"));
  EXPECT_FALSE(utf8::is_valid("h\xC3"));
}

TEST(Utf8Test, AppendEncodesEveryLength) {
  std::string s;
  for (char32_t cp : {U'a', U'\u00E4', U'\u2581', U'\U0001F999'}) utf8::append(s, cp);
  EXPECT_EQ(s, "a\xC3\xA4\xE2\x96\x81\xF0\x9F\xA6\x99");
}

TEST(ByteLevelTest, MapsBytesLikeGpt2) {
  EXPECT_EQ(byte_level::encode_byte(' '), U'\u0120');   // Ġ
  EXPECT_EQ(byte_level::encode_byte('\n'), U'\u010A');  // Ċ
  EXPECT_EQ(byte_level::encode_byte('\t'), U'\u0109');  // ĉ
  EXPECT_EQ(byte_level::encode_byte('A'), U'A');
  EXPECT_EQ(byte_level::encode_byte(0xAD), U'\u0143');  // the last remapped byte
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(byte_level::decode_code_point(byte_level::encode_byte(static_cast<uint8_t>(b))), b);
  }
  EXPECT_FALSE(byte_level::decode_code_point(U'\u0144').has_value());
  std::string encoded;
  byte_level::encode(" héllo\n\xFF", encoded);
  std::string decoded;
  byte_level::decode(encoded, decoded);
  EXPECT_EQ(decoded, " héllo\n\xFF");
}

}  // namespace
}  // namespace ondol::engine
