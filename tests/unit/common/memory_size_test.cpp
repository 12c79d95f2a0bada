#include "common/memory_size.h"

#include <gtest/gtest.h>

namespace ondol {
namespace {

TEST(MemorySize, BytesAndUnits) {
  EXPECT_EQ(parse_memory_size("1024")->bytes, 1024);
  EXPECT_EQ(parse_memory_size("512MiB")->bytes, int64_t{512} << 20);
  EXPECT_EQ(parse_memory_size("4 GiB")->bytes, int64_t{4} << 30);
  EXPECT_EQ(parse_memory_size("1.5G")->bytes, 1'500'000'000);
  EXPECT_EQ(parse_memory_size("2000kB")->bytes, 2'000'000);
  EXPECT_EQ(parse_memory_size("3mi")->bytes, 3 << 20);
  EXPECT_EQ(parse_memory_size("1e9")->bytes, 1'000'000'000);
}

TEST(MemorySize, PercentOfAvailable) {
  auto m = parse_memory_size("25%");
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->fraction, 0.25);
  EXPECT_EQ(m->bytes, 0);
  EXPECT_EQ(m->resolve(1000), 250);
  EXPECT_EQ(parse_memory_size("1024")->resolve(1), 1024);
  EXPECT_FALSE(parse_memory_size("0%").ok());
  EXPECT_FALSE(parse_memory_size("101%").ok());
}

TEST(MemorySize, RejectsWhatIsNotASize) {
  for (const char* bad : {"", "MiB", "-1", "12 parsecs", "1..2G", "nan", "1e30"}) {
    auto m = parse_memory_size(bad);
    EXPECT_FALSE(m.ok()) << bad;
    if (!m.ok()) {
      EXPECT_NE(m.error().message.find("not a memory size"), std::string::npos) << bad;
    }
  }
}

TEST(MemorySize, AvailableMemoryIsReadFromProc) {
  EXPECT_GT(available_memory_bytes(), 0);
}

}  // namespace
}  // namespace ondol
