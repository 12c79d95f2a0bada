#include "tenants/key_cache.h"

#include <gtest/gtest.h>

namespace ondol::tenants {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const ResolvedKey> entry(std::string user) {
  auto p = std::make_shared<gateway::Principal>();
  p->user_id = std::move(user);
  auto r = std::make_shared<ResolvedKey>();
  r->principal = p;
  return r;
}

TEST(KeyCache, FreshWithinTtlStaleAfterButStillThere) {
  KeyCache cache(5000ms);
  auto t0 = KeyCache::Clock::time_point{} + 1h;
  cache.put("h", entry("u"), t0);
  auto hit = cache.find("h", t0 + 4999ms);
  ASSERT_TRUE(hit.entry);
  EXPECT_TRUE(hit.fresh);
  auto stale = cache.find("h", t0 + 5000ms);
  ASSERT_TRUE(stale.entry);  // kept for database outages
  EXPECT_FALSE(stale.fresh);
  EXPECT_EQ(stale.entry->principal->user_id, "u");
  EXPECT_FALSE(cache.find("other", t0).entry);
}

TEST(KeyCache, InvalidateForgetsAtOnce) {
  KeyCache cache(60000ms);
  auto t0 = KeyCache::Clock::now();
  cache.put("h", entry("u"), t0);
  cache.invalidate("h");
  EXPECT_FALSE(cache.find("h", t0).entry);
  cache.put("h", entry("v"), t0);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(KeyCache, BoundedSize) {
  KeyCache cache(60000ms, 10);
  auto t0 = KeyCache::Clock::now();
  for (int i = 0; i < 100; ++i) cache.put(std::to_string(i), entry("u"), t0 + std::chrono::milliseconds(i));
  EXPECT_EQ(cache.size(), 10u);
  EXPECT_TRUE(cache.find("99", t0).entry);  // the newest stays
}

}  // namespace
}  // namespace ondol::tenants
