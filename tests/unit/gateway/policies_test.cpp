// The gateway's policy state: limits in process and in a real redis-server, admission limiters
// per scope, the response cache shared by two gateways through Redis, and the Redis health check.
#include "gateway/policies.h"

#include <gtest/gtest.h>

#include "../limits/co_run.h"
#include "../limits/redis_server.h"

namespace ondol::gateway {
namespace {

using limits::testing::co_run;
using limits::testing::RedisServer;

GatewayConfig config_with(std::optional<uint16_t> redis_port, bool cache, bool cache_in_redis) {
  GatewayConfig c;
  if (redis_port) {
    c.limits.redis.host = "127.0.0.1";
    c.limits.redis.port = *redis_port;
  }
  c.cache.enabled = cache;
  c.cache.redis = cache_in_redis;
  c.limits.max_queue = 3;
  return c;
}

// Stores an answer and runs the I/O context until the store has been sent (in Redis, the flush
// after the turn).
void store(Policies& p, boost::asio::io_context& io, const std::string& key,
           cache::CachedResponse value, double ttl_s) {
  p.cache_store(io.get_executor(), key, std::move(value), ttl_s);
  io.restart();
  io.run();
}

TEST(Policies, LocalLimitsAdmitExactlyTheLimit) {
  metrics::Registry registry;
  boost::asio::io_context io;
  Policies p(config_with(std::nullopt, false, false), registry);
  std::vector<limits::LimitSpec> specs{limits::requests_per_minute("deployment:d", 2)};
  int admitted = 0;
  for (int i = 0; i < 4; ++i) {
    limits::Decision d = co_run(io, p.acquire(specs, 10));
    admitted += d.admitted();
  }
  EXPECT_EQ(admitted, 2);
  EXPECT_FALSE(p.redis_configured());
  EXPECT_TRUE(co_run(io, p.check_redis()));
}

TEST(Policies, OneAdmissionPerScopeAndSize) {
  metrics::Registry registry;
  Policies p(config_with(std::nullopt, false, false), registry);
  EXPECT_EQ(p.global_admission(), nullptr);
  EXPECT_EQ(p.admission("deployment:a", 0), nullptr) << "0: no limit";
  limits::Admission* a = p.admission("deployment:a", 2);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(p.admission("deployment:a", 2), a);
  EXPECT_NE(p.admission("deployment:a", 3), a) << "a reload that changes the size";
  EXPECT_NE(p.admission("deployment:b", 2), a);
  EXPECT_EQ(a->options().max_queue, 3) << "general_settings.max_queue_size";
}

TEST(Policies, LocalCacheRoundTripsAndCountsMetrics) {
  metrics::Registry registry;
  boost::asio::io_context io;
  Policies p(config_with(std::nullopt, true, false), registry);
  ASSERT_TRUE(p.cache_enabled());
  EXPECT_FALSE(co_run(io, p.cache_get("k")));
  store(p, io, "k", {.content_type = "application/json", .body = "{}"}, 60);
  auto hit = co_run(io, p.cache_get("k"));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->body, "{}");
  p.count_cache(true, "m");
  p.count_cache(false, "m");
  std::string text = registry.render();
  EXPECT_NE(text.find("litellm_cache_hits_metric_total{model=\"m\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("litellm_cache_misses_metric_total{model=\"m\"} 1"), std::string::npos);
}

TEST(Policies, RedisSharesCountersAndCacheBetweenGateways) {
  RedisServer redis;
  ASSERT_TRUE(redis.start());
  metrics::Registry r1, r2;
  boost::asio::io_context io;
  Policies a(config_with(redis.port(), true, true), r1);
  Policies b(config_with(redis.port(), true, true), r2);
  ASSERT_TRUE(a.redis_configured());
  std::vector<limits::LimitSpec> specs{limits::requests_per_minute("deployment:shared", 3)};
  int admitted = 0;
  for (int i = 0; i < 6; ++i) {
    limits::Decision d = co_run(io, (i % 2 ? a : b).acquire(specs, 1));
    admitted += d.admitted();
    EXPECT_FALSE(d.degraded);
  }
  EXPECT_EQ(admitted, 3);

  store(a, io, "key1", {.content_type = "text/event-stream", .body = "data: x\n\n"}, 60);
  auto hit = co_run(io, b.cache_get("key1"));
  ASSERT_TRUE(hit) << "b reads what a stored";
  EXPECT_EQ(hit->content_type, "text/event-stream");
  EXPECT_EQ(hit->body, "data: x\n\n");
  EXPECT_TRUE(co_run(io, a.check_redis()));

  redis.stop();
  EXPECT_FALSE(co_run(io, a.check_redis()));
  EXPECT_FALSE(a.redis_reachable());
  EXPECT_FALSE(co_run(io, b.cache_get("key1"))) << "Redis down: a miss, not a hang";
}

TEST(Policies, RedisCacheStoresQueuedInOneTurnAreSentWithTheirTtls) {
  RedisServer redis;
  ASSERT_TRUE(redis.start());
  metrics::Registry r1, r2;
  boost::asio::io_context io;
  Policies a(config_with(redis.port(), true, true), r1);
  Policies b(config_with(redis.port(), true, true), r2);
  a.cache_store(io.get_executor(), "s1", {.content_type = "application/json", .body = "{\"a\":1}"},
                60);
  a.cache_store(io.get_executor(), "s2",
                {.content_type = "text/event-stream", .body = "data: y\n\n"}, 0.5);
  EXPECT_FALSE(co_run(io, b.cache_get("s1"))) << "queued, not sent, until the turn ends";
  io.restart();
  io.run();
  auto s1 = co_run(io, b.cache_get("s1"));
  auto s2 = co_run(io, b.cache_get("s2"));
  ASSERT_TRUE(s1);
  ASSERT_TRUE(s2);
  EXPECT_EQ(s1->body, "{\"a\":1}");
  EXPECT_EQ(s2->content_type, "text/event-stream");
  limits::RedisClient raw(io.get_executor(), {.port = redis.port()});
  auto ttl1 = co_run(io, raw.command({"PTTL", "ondol:cache:s1"}));
  auto ttl2 = co_run(io, raw.command({"PTTL", "ondol:cache:s2"}));
  ASSERT_TRUE(ttl1 && ttl2);
  EXPECT_GT(ttl1->integer, 50'000);
  EXPECT_LE(ttl1->integer, 60'000);
  EXPECT_GT(ttl2->integer, 0);
  EXPECT_LE(ttl2->integer, 500);

  // Large answers go in several calls (at most 1 MiB each), all stored.
  const std::string big(600 * 1024, 'x');
  for (const char* k : {"big1", "big2", "big3"})
    a.cache_store(io.get_executor(), k, {.content_type = "application/json", .body = big}, 60);
  io.restart();
  io.run();
  for (const char* k : {"big1", "big2", "big3"}) {
    auto got = co_run(io, b.cache_get(k));
    ASSERT_TRUE(got) << k;
    EXPECT_EQ(got->body.size(), big.size());
  }

  // A store queued while Redis is down is dropped (a later miss), and nothing hangs.
  redis.stop();
  a.cache_store(io.get_executor(), "s3", {.content_type = "application/json", .body = "{}"}, 60);
  io.restart();
  io.run();
  EXPECT_FALSE(co_run(io, b.cache_get("s3")));
}

TEST(Policies, CacheInTheLimitsRedisIsLookedUpWithTheLimits) {
  RedisServer redis;
  ASSERT_TRUE(redis.start());
  metrics::Registry r1, r2;
  boost::asio::io_context io;
  Policies a(config_with(redis.port(), true, true), r1);
  std::vector<limits::LimitSpec> specs{limits::requests_per_minute("key:lookup", 100)};
  store(a, io, "hit", {.content_type = "application/json", .body = "{\"x\":2}"}, 60);
  Policies::CacheLookup hit, miss, skipped;
  limits::Decision d1 = co_run(io, a.acquire_and_lookup(specs, 1, "hit", &hit));
  limits::Decision d2 = co_run(io, a.acquire_and_lookup(specs, 1, "missing", &miss));
  limits::Decision d3 = co_run(io, a.acquire_and_lookup(specs, 1, "", &skipped));
  EXPECT_TRUE(d1.admitted() && d2.admitted() && d3.admitted());
  ASSERT_TRUE(hit.done);
  ASSERT_TRUE(hit.hit);
  EXPECT_EQ(hit.hit->body, "{\"x\":2}");
  EXPECT_TRUE(miss.done);
  EXPECT_FALSE(miss.hit);
  EXPECT_FALSE(skipped.done);

  // The cache in process (limits in Redis): the lookup is the caller's, after the limits.
  Policies b(config_with(redis.port(), true, false), r2);
  Policies::CacheLookup separate;
  limits::Decision d4 = co_run(io, b.acquire_and_lookup(specs, 1, "hit", &separate));
  EXPECT_TRUE(d4.admitted());
  EXPECT_FALSE(separate.done);
}

TEST(Policies, RedisSettlementIsSentOffTheRequestPathExactlyOnce) {
  RedisServer redis;
  ASSERT_TRUE(redis.start());
  metrics::Registry registry;
  boost::asio::io_context io;
  Policies p(config_with(redis.port(), false, false), registry);
  limits::LimitSpec spec = limits::tokens_per_minute("key:settle", 1000);
  std::vector<limits::LimitSpec> specs{spec};
  limits::Decision d = co_run(io, p.acquire(specs, 100));
  ASSERT_TRUE(d.admitted());
  ASSERT_EQ(d.ticket.source, limits::Ticket::Source::Redis);
  limits::RedisConfig rc;
  rc.port = redis.port();
  limits::RedisClient client(io.get_executor(), rc);
  auto cur = [&] {
    std::vector<std::string> cmd{"HGET", "ondol:rl:" + limits::counter_key(spec), "cur"};
    Result<limits::RespValue> v = co_run(io, client.command(std::move(cmd)));
    return v.ok() ? v->str : std::string("error");
  };
  EXPECT_EQ(cur(), "100");
  p.settle(d.ticket, 30);  // returns at once; the settlement runs on the io_context
  limits::Ticket none;
  p.settle(none, 5);  // an empty ticket settles nothing
  io.restart();
  io.run();  // the detached settlement
  EXPECT_EQ(cur(), "30") << "the estimate of 100 corrected to the 30 used, once";
}

}  // namespace
}  // namespace ondol::gateway
