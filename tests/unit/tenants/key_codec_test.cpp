#include "tenants/key_codec.h"

#include <gtest/gtest.h>

#include <set>

namespace ondol::tenants {
namespace {

TEST(KeyCodec, GeneratedKeysHaveThePrefixAnd256RandomBits) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string k = generate_key();
    EXPECT_TRUE(k.starts_with("sk-"));
    EXPECT_EQ(k.size(), 3u + 43u);  // 32 bytes in base64url without padding
    EXPECT_EQ(k.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                                  3),
              std::string::npos);
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(KeyCodec, HashIsSha256Hex) {
  // SHA-256("abc") from FIPS 180-2.
  EXPECT_EQ(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hash_key("sk-1").size(), 64u);
  EXPECT_NE(hash_key("sk-1"), hash_key("sk-2"));
}

TEST(KeyCodec, ConstantTimeEquality) {
  EXPECT_TRUE(equal_constant_time("sk-abc", "sk-abc"));
  EXPECT_FALSE(equal_constant_time("sk-abc", "sk-abd"));
  EXPECT_FALSE(equal_constant_time("sk-abc", "sk-ab"));
  EXPECT_FALSE(equal_constant_time("", "x"));
}

TEST(KeyCodec, DisplayShowsOnlyTheLastFourCharacters) {
  EXPECT_EQ(key_display("sk-0123456789abcd"), "sk-...abcd");
}

}  // namespace
}  // namespace ondol::tenants
