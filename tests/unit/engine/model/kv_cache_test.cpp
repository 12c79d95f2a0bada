#include "engine/model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

namespace ondol::engine {
namespace {

KvCacheConfig small_config(KvDtype dtype) {
  return {.num_layers = 2, .num_kv_heads = 2, .head_dim = 8, .num_blocks = 4, .dtype = dtype};
}

TEST(KvCacheTest, RejectsEmptyShapes) {
  KvCacheConfig c = small_config(KvDtype::kF16);
  c.num_blocks = 0;
  EXPECT_FALSE(KvCache::create(c).ok());
  c = small_config(KvDtype::kF16);
  c.head_dim = 0;
  EXPECT_FALSE(KvCache::create(c).ok());
}

TEST(KvCacheTest, ReserveGrowsTablesBlockByBlockAndReleaseReturnsThem) {
  auto cache = KvCache::create(small_config(KvDtype::kF32));
  ASSERT_TRUE(cache.ok());
  EXPECT_EQ(cache->num_blocks_free(), 4);
  BlockTable a, b;
  EXPECT_TRUE(cache->reserve(a, 1));
  EXPECT_EQ(a.size(), 1u);
  EXPECT_TRUE(cache->reserve(a, kBlockSize));  // still one block
  EXPECT_EQ(a.size(), 1u);
  EXPECT_TRUE(cache->reserve(a, kBlockSize + 1));
  EXPECT_EQ(a.size(), 2u);
  EXPECT_TRUE(cache->reserve(b, 2 * kBlockSize));
  EXPECT_EQ(cache->num_blocks_used(), 4);
  EXPECT_FALSE(cache->can_allocate(1));
  EXPECT_FALSE(cache->reserve(b, 3 * kBlockSize));  // out of blocks: table unchanged
  EXPECT_EQ(b.size(), 2u);
  std::set<BlockId> ids(a.begin(), a.end());
  ids.insert(b.begin(), b.end());
  EXPECT_EQ(ids.size(), 4u);  // no block handed out twice
  cache->release(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(cache->num_blocks_free(), 2);
  EXPECT_TRUE(cache->reserve(b, 4 * kBlockSize));
  EXPECT_EQ(cache->num_blocks_free(), 0);
}

TEST(KvCacheTest, HeadBlocksOfDifferentLayersBlocksHeadsAndPoolsDoNotOverlap) {
  for (KvDtype dtype : {KvDtype::kF32, KvDtype::kF16}) {
    auto cache = KvCache::create(small_config(dtype));
    ASSERT_TRUE(cache.ok());
    const int64_t row = 8 * cache->bytes_per_value();  // head_dim values
    const int64_t head_block = kBlockSize * row;
    EXPECT_EQ(cache->bytes_per_token(), 2 * 2 * 2 * row);  // K and V, 2 layers, 2 heads
    std::set<const std::byte*> starts;
    auto tag = [](int l, BlockId b, int h, int v) {
      return std::byte(1 + l * 16 + b * 4 + h * 2 + v);
    };
    for (int l = 0; l < 2; ++l) {
      for (BlockId b = 0; b < 4; ++b) {
        for (int h = 0; h < 2; ++h) {
          std::memset(cache->key_block(l, b, h), static_cast<int>(tag(l, b, h, 0)), head_block);
          std::memset(cache->value_block(l, b, h), static_cast<int>(tag(l, b, h, 1)), head_block);
          starts.insert(cache->key_block(l, b, h));
          starts.insert(cache->value_block(l, b, h));
        }
      }
    }
    EXPECT_EQ(starts.size(), 2u * 4 * 2 * 2);
    // Every head block still holds its own tag: nothing written later overlapped it.
    for (int l = 0; l < 2; ++l) {
      for (BlockId b = 0; b < 4; ++b) {
        for (int h = 0; h < 2; ++h) {
          const std::byte* k = cache->key_block(l, b, h);
          const std::byte* v = cache->value_block(l, b, h);
          for (int64_t i = 0; i < head_block; ++i) {
            ASSERT_EQ(k[i], tag(l, b, h, 0));
            ASSERT_EQ(v[i], tag(l, b, h, 1));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace ondol::engine
