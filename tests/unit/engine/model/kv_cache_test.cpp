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
  EXPECT_TRUE(cache->reserve(a, kDefaultBlockSize));  // still one block
  EXPECT_EQ(a.size(), 1u);
  EXPECT_TRUE(cache->reserve(a, kDefaultBlockSize + 1));
  EXPECT_EQ(a.size(), 2u);
  EXPECT_TRUE(cache->reserve(b, 2 * kDefaultBlockSize));
  EXPECT_EQ(cache->num_blocks_used(), 4);
  EXPECT_FALSE(cache->can_allocate(1));
  EXPECT_FALSE(cache->reserve(b, 3 * kDefaultBlockSize));  // out of blocks: table unchanged
  EXPECT_EQ(b.size(), 2u);
  std::set<BlockId> ids(a.begin(), a.end());
  ids.insert(b.begin(), b.end());
  EXPECT_EQ(ids.size(), 4u);  // no block handed out twice
  cache->release(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(cache->num_blocks_free(), 2);
  EXPECT_TRUE(cache->reserve(b, 4 * kDefaultBlockSize));
  EXPECT_EQ(cache->num_blocks_free(), 0);
}

TEST(KvCacheTest, HeadBlocksOfDifferentLayersBlocksHeadsAndPoolsDoNotOverlap) {
  for (KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kI8}) {
    SCOPED_TRACE(std::string(kv_dtype_name(dtype)));
    auto cache = KvCache::create(small_config(dtype));
    ASSERT_TRUE(cache.ok());
    // head_dim values per row; int8 rows carry a float scale each, after the block's rows.
    const int64_t row = 8 * cache->bytes_per_value() + (dtype == KvDtype::kI8 ? 4 : 0);
    const int64_t head_block = kDefaultBlockSize * row;
    EXPECT_EQ(cache->head_bytes(), head_block);
    EXPECT_EQ(cache->bytes_per_token(), 2 * 2 * 2 * row);  // K and V, 2 layers, 2 heads
    EXPECT_EQ(cache->bytes_per_block(), kDefaultBlockSize * cache->bytes_per_token());
    if (dtype == KvDtype::kI8) {
      EXPECT_EQ(reinterpret_cast<const std::byte*>(cache->row_scales(cache->key_block(1, 2, 1))),
                cache->key_block(1, 2, 1) + kDefaultBlockSize * 8);
    }
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

namespace ondol::engine {
namespace {

KvCacheConfig tiny_blocks(int num_blocks, int block_size) {
  return {.num_layers = 1, .num_kv_heads = 1, .head_dim = 4, .num_blocks = num_blocks,
          .dtype = KvDtype::kF32, .block_size = block_size};
}

std::vector<TokenId> iota_tokens(int n, TokenId first) {
  std::vector<TokenId> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = first + i;
  return t;
}

TEST(KvCacheTest, BlockSizeIsConfigurable) {
  auto cache = KvCache::create(tiny_blocks(8, 4));
  ASSERT_TRUE(cache.ok());
  BlockTable t;
  EXPECT_TRUE(cache->reserve(t, 9));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_FALSE(KvCache::create(tiny_blocks(8, 0)).ok());
  EXPECT_FALSE(KvCache::create(tiny_blocks(8, kMaxBlockSize + 1)).ok());
}

TEST(KvCacheTest, BlockHashNamesTheWholePrefix) {
  const auto a = iota_tokens(4, 10), b = iota_tokens(4, 20);
  const BlockHash ha = hash_block(kRootBlockHash, a);
  EXPECT_EQ(ha, hash_block(kRootBlockHash, a));
  EXPECT_NE(ha, hash_block(kRootBlockHash, b));
  // The same block after different parents is a different key.
  EXPECT_NE(hash_block(ha, b), hash_block(hash_block(kRootBlockHash, b), b));
}

TEST(KvCacheTest, PublishedBlocksAreFoundSharedAndSurviveBeingFreed) {
  auto cache = KvCache::create(tiny_blocks(4, 4));
  ASSERT_TRUE(cache.ok());
  const auto tokens = iota_tokens(4, 1);
  const BlockHash h = hash_block(kRootBlockHash, tokens);
  BlockTable first;
  ASSERT_TRUE(cache->reserve(first, 4));
  EXPECT_EQ(cache->find_cached(h, kRootBlockHash, tokens), kNoBlock);
  cache->publish(first[0], h, kRootBlockHash, tokens);
  EXPECT_EQ(cache->num_blocks_cached(), 1);

  // A second holder shares it.
  BlockTable second;
  const BlockId hit = cache->find_cached(h, kRootBlockHash, tokens);
  ASSERT_EQ(hit, first[0]);
  cache->acquire(hit);
  second.push_back(hit);
  EXPECT_EQ(cache->ref_count(hit), 2);
  const BlockTable* holders[] = {&first, &second};
  EXPECT_TRUE(cache->check_invariants(holders).ok());

  // Freed by both, it counts as free yet is still found, and acquiring it takes it back.
  cache->release(first);
  cache->release(second);
  EXPECT_EQ(cache->num_blocks_free(), 4);
  EXPECT_EQ(cache->find_cached(h, kRootBlockHash, tokens), hit);
  cache->acquire(hit);
  EXPECT_EQ(cache->num_blocks_free(), 3);
  BlockTable third{hit};
  const BlockTable* one[] = {&third};
  EXPECT_TRUE(cache->check_invariants(one).ok());
  cache->release(third);
}

TEST(KvCacheTest, LookupComparesTokensAndParentNotOnlyTheKey) {
  auto cache = KvCache::create(tiny_blocks(2, 4));
  ASSERT_TRUE(cache.ok());
  const auto tokens = iota_tokens(4, 1), other = iota_tokens(4, 7);
  const BlockHash h = hash_block(kRootBlockHash, tokens);
  BlockTable t;
  ASSERT_TRUE(cache->reserve(t, 4));
  cache->publish(t[0], h, kRootBlockHash, tokens);
  // The same key with other tokens or another parent (a collision) finds nothing.
  EXPECT_EQ(cache->find_cached(h, kRootBlockHash, other), kNoBlock);
  EXPECT_EQ(cache->find_cached(h, h, tokens), kNoBlock);
  cache->release(t);
}

TEST(KvCacheTest, FirstPublishedCopyStaysAndDuplicatesStayPlain) {
  auto cache = KvCache::create(tiny_blocks(2, 4));
  ASSERT_TRUE(cache.ok());
  const auto tokens = iota_tokens(4, 1);
  const BlockHash h = hash_block(kRootBlockHash, tokens);
  BlockTable a, b;
  ASSERT_TRUE(cache->reserve(a, 4));
  ASSERT_TRUE(cache->reserve(b, 4));
  cache->publish(a[0], h, kRootBlockHash, tokens);
  cache->publish(b[0], h, kRootBlockHash, tokens);
  EXPECT_EQ(cache->num_blocks_cached(), 1);
  EXPECT_EQ(cache->find_cached(h, kRootBlockHash, tokens), a[0]);
  const BlockTable* holders[] = {&a, &b};
  EXPECT_TRUE(cache->check_invariants(holders).ok());
  cache->release(a);
  cache->release(b);
}

TEST(KvCacheTest, EvictionTakesLeastRecentlyFreedAndSequenceTailsFirst) {
  auto cache = KvCache::create(tiny_blocks(4, 1));
  ASSERT_TRUE(cache.ok());
  BlockTable seq;
  ASSERT_TRUE(cache->reserve(seq, 3));
  std::vector<BlockHash> keys;
  BlockHash parent = kRootBlockHash;
  for (int i = 0; i < 3; ++i) {
    const TokenId tok = i;
    const BlockHash h = hash_block(parent, {&tok, 1});
    cache->publish(seq[static_cast<size_t>(i)], h, parent, {&tok, 1});
    keys.push_back(h);
    parent = h;
  }
  const BlockTable kept = seq;
  cache->release(seq);  // freed last first: the queue is now [spare, block 2, block 1, block 0]
  EXPECT_EQ(cache->num_blocks_cached(), 3);
  BlockTable fresh;
  ASSERT_TRUE(cache->reserve(fresh, 2));  // the never-used block, then the sequence's tail
  EXPECT_EQ(fresh[1], kept[2]);
  EXPECT_EQ(cache->num_blocks_cached(), 2);  // block 2's key was evicted
  const TokenId t0 = 0;
  EXPECT_EQ(cache->find_cached(keys[0], kRootBlockHash, {&t0, 1}), kept[0]);
  cache->release(fresh);
  const BlockTable* none[] = {&fresh};
  EXPECT_TRUE(cache->check_invariants(none).ok());
}

TEST(KvCacheTest, InvariantCheckCatchesAMissingHolder) {
  auto cache = KvCache::create(tiny_blocks(2, 4));
  ASSERT_TRUE(cache.ok());
  BlockTable t;
  ASSERT_TRUE(cache->reserve(t, 4));
  const BlockTable* nobody[] = {nullptr};
  EXPECT_FALSE(cache->check_invariants(nobody).ok());  // the block is held by no table
  const BlockTable* holders[] = {&t};
  EXPECT_TRUE(cache->check_invariants(holders).ok());
  cache->release(t);
}

TEST(KvCacheTest, DtypeNames) {
  EXPECT_EQ(*parse_kv_dtype("auto"), KvDtype::kF16);
  EXPECT_EQ(*parse_kv_dtype("float16"), KvDtype::kF16);
  EXPECT_EQ(*parse_kv_dtype("float32"), KvDtype::kF32);
  EXPECT_EQ(*parse_kv_dtype("int8"), KvDtype::kI8);
  for (KvDtype d : {KvDtype::kF32, KvDtype::kF16, KvDtype::kI8})
    EXPECT_EQ(*parse_kv_dtype(kv_dtype_name(d)), d);
  auto bad = parse_kv_dtype("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("auto, float16, float32, int8"), std::string::npos);
}

}  // namespace
}  // namespace ondol::engine
