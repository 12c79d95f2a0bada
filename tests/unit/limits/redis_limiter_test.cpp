// RedisLimiter against a real redis-server: instances sharing Redis admit exactly the limit,
// nothing is charged on denial, settling, TTLs, fail-open and fail-closed within the timeout,
// recovery when Redis returns, and the health counters.
#include "limits/redis_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "co_run.h"
#include "common/metrics/registry.h"
#include "redis_server.h"

namespace ondol::limits {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::co_run;
using testing::RedisServer;

constexpr int64_t kHourMs = 3'600'000;  // long windows keep wall-clock tests off window edges

RedisConfig config_for(const RedisServer& server, std::chrono::milliseconds timeout = 1000ms) {
  RedisConfig c;
  c.port = server.port();
  c.password = server.password();
  c.command_timeout = timeout;
  c.backoff_initial = 50ms;
  c.backoff_max = 200ms;
  return c;
}

struct Instance {
  Instance(const RedisServer& server, FailMode mode, std::chrono::milliseconds timeout = 1000ms)
      : client(io.get_executor(), config_for(server, timeout)),
        limiter(client, &fallback, stats, {.fail_mode = mode}) {}

  Decision acquire(const std::vector<LimitSpec>& specs, int64_t tokens) {
    return co_run(io, limiter.acquire(specs, tokens));
  }
  void settle(const Ticket& t, int64_t actual) { co_run(io, limiter.settle(t, actual)); }
  Result<RespValue> command(std::vector<std::string> args) {
    return co_run(io, client.command(std::move(args)));
  }
  int64_t field(const LimitSpec& spec, const char* name) {
    auto r = command({"HGET", "ondol:rl:" + counter_key(spec), name});
    return r.ok() && r->type == RespType::BulkString ? std::stoll(r->str) : -999;
  }

  asio::io_context io;
  RedisClient client;
  LocalLimiter fallback;
  RedisLimiterStats stats;
  RedisLimiter limiter;
};

TEST(RedisLimiter, InstancesSharingRedisAdmitExactlyTheLimitInTotal) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  constexpr int kInstances = 4;
  constexpr int kCoroutines = 8;
  constexpr int kAttempts = 40;  // per coroutine: 1280 attempts in all
  constexpr int64_t kLimit = 500;
  const std::vector<LimitSpec> specs = {
      {.scope = "team:t", .unit = LimitUnit::Requests, .limit = kLimit, .window_ms = kHourMs},
      {.scope = "tier:pro",
       .unit = LimitUnit::Tokens,
       .limit = 1'000'000'000,
       .window_ms = kHourMs}};
  std::atomic<int> admitted{0}, denied{0}, unavailable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kInstances; ++t) {
    threads.emplace_back([&] {
      Instance inst(server, FailMode::Closed);
      for (int c = 0; c < kCoroutines; ++c) {
        asio::co_spawn(
            inst.io,
            [&]() -> asio::awaitable<void> {
              for (int i = 0; i < kAttempts; ++i) {
                Decision d = co_await inst.limiter.acquire(specs, 7);
                if (d.admitted())
                  ++admitted;
                else if (d.outcome == Outcome::Denied)
                  ++denied;
                else
                  ++unavailable;
              }
            },
            asio::detached);
      }
      inst.io.run();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(unavailable.load(), 0);
  EXPECT_EQ(admitted.load(), kLimit);
  EXPECT_EQ(denied.load(), kInstances * kCoroutines * kAttempts - kLimit);
  Instance check(server, FailMode::Closed);
  EXPECT_EQ(check.field(specs[0], "cur"), kLimit);
  EXPECT_EQ(check.field(specs[1], "cur"), kLimit * 7);
}

TEST(RedisLimiter, NothingIsChargedWhenOneLimitRefusesAndSettleCorrects) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Instance inst(server, FailMode::Closed);
  const std::vector<LimitSpec> specs = {
      {.scope = "key:k", .unit = LimitUnit::Requests, .limit = 100, .window_ms = kHourMs},
      {.scope = "user:u", .unit = LimitUnit::Tokens, .limit = 1000, .window_ms = kHourMs},
      {.scope = "user:u", .unit = LimitUnit::Tokens, .limit = 100'000, .window_ms = kDayMs}};
  Decision first = inst.acquire(specs, 600);
  ASSERT_TRUE(first.admitted());
  EXPECT_FALSE(first.degraded);
  EXPECT_EQ(first.ticket.source, Ticket::Source::Redis);
  EXPECT_EQ(first.limits[0].remaining, 99);
  EXPECT_EQ(first.limits[1].remaining, 400);

  Decision denied = inst.acquire(specs, 600);
  ASSERT_EQ(denied.outcome, Outcome::Denied);
  EXPECT_FALSE(denied.limits[1].fits);
  EXPECT_GT(denied.retry_after_ms, 0);
  EXPECT_EQ(inst.field(specs[0], "cur"), 1);
  EXPECT_EQ(inst.field(specs[1], "cur"), 600);
  EXPECT_EQ(inst.field(specs[2], "cur"), 600);

  inst.settle(first.ticket, 150);  // used 150 of the 600 estimated
  EXPECT_EQ(inst.field(specs[1], "cur"), 150);
  EXPECT_EQ(inst.field(specs[2], "cur"), 150);
  Decision after = inst.acquire(specs, 800);
  ASSERT_TRUE(after.admitted());
  EXPECT_EQ(after.limits[1].remaining, 50);
  inst.settle(after.ticket, 1000);  // more than estimated: charged on top
  EXPECT_EQ(inst.field(specs[1], "cur"), 1150);
  EXPECT_EQ(inst.field(specs[0], "cur"), 2);  // request counters are never settled

  Decision too_large = inst.acquire(specs, 5000);
  EXPECT_EQ(too_large.outcome, Outcome::Denied);
  EXPECT_TRUE(too_large.too_large);
}

TEST(RedisLimiter, SettleSoonSumsTheTurnsSettlementsIntoOneCall) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Instance inst(server, FailMode::Closed);
  const std::vector<LimitSpec> specs = {
      {.scope = "key:k", .unit = LimitUnit::Requests, .limit = 100, .window_ms = kHourMs},
      {.scope = "key:k", .unit = LimitUnit::Tokens, .limit = 10'000, .window_ms = kHourMs},
      {.scope = "team:t", .unit = LimitUnit::Tokens, .limit = 10'000, .window_ms = kHourMs}};
  std::vector<Ticket> tickets;
  for (int i = 0; i < 5; ++i) {
    Decision d = inst.acquire(specs, 100);
    ASSERT_TRUE(d.admitted());
    tickets.push_back(d.ticket);
  }
  ASSERT_EQ(inst.field(specs[1], "cur"), 500);
  // Five requests finish in one turn: 10, 20, 30, 40 and 100 (as estimated) tokens used.
  const int64_t used[] = {10, 20, 30, 40, 100};
  for (int i = 0; i < 5; ++i) inst.limiter.settle_soon(inst.io.get_executor(), tickets[i], used[i]);
  EXPECT_EQ(inst.limiter.num_unsent_settlements(), 2u) << "one entry per counter and window";
  EXPECT_EQ(inst.limiter.num_settle_calls(), 0u) << "nothing is sent before the turn ends";
  inst.io.restart();
  inst.io.run();
  EXPECT_EQ(inst.limiter.num_settle_calls(), 1u);
  EXPECT_EQ(inst.limiter.num_unsent_settlements(), 0u);
  EXPECT_EQ(inst.field(specs[1], "cur"), 200);
  EXPECT_EQ(inst.field(specs[2], "cur"), 200);
  EXPECT_EQ(inst.field(specs[0], "cur"), 5);  // request counters are never settled

  // Deltas that cancel out send nothing; a later turn's settlements go in a call of their own.
  Decision a = inst.acquire(specs, 100);
  Decision b = inst.acquire(specs, 100);
  inst.limiter.settle_soon(inst.io.get_executor(), a.ticket, 150);
  inst.limiter.settle_soon(inst.io.get_executor(), b.ticket, 50);
  inst.io.restart();
  inst.io.run();
  EXPECT_EQ(inst.limiter.num_settle_calls(), 1u);
  EXPECT_EQ(inst.field(specs[1], "cur"), 400);
  inst.limiter.settle_soon(inst.io.get_executor(), a.ticket, 0);
  inst.io.restart();
  inst.io.run();
  EXPECT_EQ(inst.limiter.num_settle_calls(), 2u);
  EXPECT_EQ(inst.field(specs[1], "cur"), 300);
}

TEST(RedisLimiter, AcquireAndGetReadsTheExtraKeyInTheSameCall) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Instance inst(server, FailMode::Open);
  const std::vector<LimitSpec> specs = {
      {.scope = "key:g", .unit = LimitUnit::Requests, .limit = 2, .window_ms = kHourMs},
      {.scope = "key:g", .unit = LimitUnit::Tokens, .limit = 1000, .window_ms = kHourMs}};
  ASSERT_TRUE(inst.command({"SET", "cache:present", "stored value"}));
  auto co_get = [&](std::string key) {
    return co_run(inst.io, inst.limiter.acquire_and_get(specs, 10, std::move(key)));
  };
  RedisLimiter::AcquireAndGet present = co_get("cache:present");
  EXPECT_TRUE(present.decision.admitted());
  EXPECT_TRUE(present.got);
  EXPECT_EQ(present.value, "stored value");
  EXPECT_EQ(present.decision.limits[0].remaining, 1);
  EXPECT_EQ(present.decision.ticket.tokens.size(), 1u);

  RedisLimiter::AcquireAndGet absent = co_get("cache:absent");
  EXPECT_TRUE(absent.decision.admitted());
  EXPECT_TRUE(absent.got);
  EXPECT_FALSE(absent.value);

  RedisLimiter::AcquireAndGet refused = co_get("cache:present");
  EXPECT_EQ(refused.decision.outcome, Outcome::Denied) << "the limit of 2 is used up";
  EXPECT_TRUE(refused.got);
  EXPECT_EQ(inst.field(specs[0], "cur"), 2) << "the read charged nothing";
  EXPECT_EQ(inst.field(specs[1], "cur"), 20);

  RedisLimiter::AcquireAndGet none = co_get("");  // no extra key: acquire() alone
  EXPECT_EQ(none.decision.outcome, Outcome::Denied);
  EXPECT_FALSE(none.got);

  server.stop();
  RedisLimiter::AcquireAndGet down = co_get("cache:present");
  EXPECT_FALSE(down.got) << "Redis away: no value, and the fail mode decides";
  EXPECT_TRUE(down.decision.degraded);
  EXPECT_TRUE(down.decision.admitted());
}

TEST(RedisLimiter, LeasesCountAcrossInstancesAreAllOrNothingAndExpire) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Instance a(server, FailMode::Closed);
  Instance b(server, FailMode::Closed);
  const std::vector<std::string> scopes = {"key:k", "team:t"};
  const std::vector<int64_t> limits = {2, 3};
  auto lease = [&](Instance& i, std::string member, int64_t lease_ms = 60'000) {
    return co_run(i.io, i.limiter.acquire_leases(scopes, limits, std::move(member), lease_ms));
  };
  EXPECT_TRUE(lease(a, "r1").admitted);
  EXPECT_TRUE(lease(b, "r2").admitted);
  RedisLimiter::LeaseResult full = lease(a, "r3");
  EXPECT_TRUE(full.reached);
  EXPECT_FALSE(full.admitted);
  EXPECT_EQ(full.refused, 0u) << "the key's limit of 2 is full";
  auto team = a.command({"ZCARD", "ondol:rl:par|team:t"});
  EXPECT_EQ(team->integer, 2) << "the refused request leased nothing";

  b.limiter.release_leases_soon(b.io.get_executor(), scopes, "r2");
  EXPECT_EQ(b.limiter.num_unsent_releases(), 2u);
  b.io.restart();
  b.io.run();
  EXPECT_TRUE(lease(a, "r4").admitted) << "r2's slot is free again";

  // A crashed instance's leases stop counting when they expire.
  const std::vector<std::string> one = {"key:crash"};
  const std::vector<int64_t> limit_one = {1};
  auto short_lease = co_run(b.io, b.limiter.acquire_leases(one, limit_one, "gone", 100));
  EXPECT_TRUE(short_lease.admitted);
  EXPECT_FALSE(co_run(a.io, a.limiter.acquire_leases(one, limit_one, "next", 60'000)).admitted);
  std::this_thread::sleep_for(150ms);
  EXPECT_TRUE(co_run(a.io, a.limiter.acquire_leases(one, limit_one, "next", 60'000)).admitted);

  server.stop();
  EXPECT_FALSE(lease(a, "r5").reached);
}

TEST(RedisLimiter, KeysExpireWhenTheirWindowsCanNoLongerMatter) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Instance inst(server, FailMode::Closed);
  const std::vector<LimitSpec> specs = {requests_per_minute("key:ttl", 10),
                                        tokens_per_day("key:ttl", 1000)};
  ASSERT_TRUE(inst.acquire(specs, 5).admitted());
  auto minute = inst.command({"PTTL", "ondol:rl:key:ttl|requests|60000"});
  auto day = inst.command({"PTTL", "ondol:rl:key:ttl|tokens|86400000"});
  ASSERT_EQ(minute->type, RespType::Integer);
  EXPECT_GT(minute->integer, kMinuteMs);  // at least the rest of this window and the next
  EXPECT_LE(minute->integer, 2 * kMinuteMs + 1000);
  EXPECT_GT(day->integer, kDayMs);
  EXPECT_LE(day->integer, 2 * kDayMs + 1000);
  // Later charges in the same window count without touching the expiry, which the window fixes.
  ASSERT_TRUE(inst.acquire(specs, 7).admitted());
  auto again = inst.command({"PTTL", "ondol:rl:key:ttl|requests|60000"});
  EXPECT_GT(again->integer, kMinuteMs);
  EXPECT_LE(again->integer, minute->integer);
  EXPECT_EQ(inst.field(specs[0], "cur"), 2);
  EXPECT_EQ(inst.field(specs[1], "cur"), 12);
}

TEST(RedisLimiter, StoppedRedisFailOpenDecidesInProcessWithinTheTimeout) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  metrics::Registry registry;
  Instance inst(server, FailMode::Open, 100ms);
  inst.stats.declare_metrics(registry);
  const std::vector<LimitSpec> specs = {requests_per_minute("key:open", 2),
                                        tokens_per_minute("key:open", 1000)};
  ASSERT_TRUE(inst.acquire(specs, 10).admitted());
  EXPECT_TRUE(inst.stats.reachable());
  server.stop();

  const auto start = Clock::now();
  Decision d = inst.acquire(specs, 10);
  EXPECT_LT(Clock::now() - start, 100ms + 400ms);
  EXPECT_TRUE(d.admitted());
  EXPECT_TRUE(d.degraded);
  EXPECT_EQ(d.ticket.source, Ticket::Source::Local);
  EXPECT_FALSE(inst.stats.reachable());
  EXPECT_GE(inst.stats.errors_total(), 1u);
  // Counted locally: this instance alone still holds to the limit.
  EXPECT_TRUE(inst.acquire(specs, 10).admitted());
  EXPECT_EQ(inst.acquire(specs, 10).outcome, Outcome::Denied);
  inst.settle(d.ticket, 0);  // a local ticket settles locally
  EXPECT_EQ(inst.fallback.peek(specs[1]).current, 10);

  const std::string text = registry.render();
  EXPECT_NE(text.find("ondol_redis_up 0"), std::string::npos) << text;
  EXPECT_NE(text.find("ondol_rate_limit_degraded_total{mode=\"open\"} 3"), std::string::npos)
      << text;
}

TEST(RedisLimiter, FrozenRedisFailClosedRefusesWithinTheTimeout) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Instance inst(server, FailMode::Closed, 100ms);
  const std::vector<LimitSpec> specs = {requests_per_minute("key:closed", 100)};
  ASSERT_TRUE(inst.acquire(specs, 0).admitted());
  server.freeze();
  auto start = Clock::now();
  Decision d = inst.acquire(specs, 0);
  auto took = Clock::now() - start;
  EXPECT_EQ(d.outcome, Outcome::Unavailable);
  EXPECT_TRUE(d.degraded);
  EXPECT_EQ(d.retry_after_seconds(), 1);
  EXPECT_TRUE(d.ticket.tokens.empty());
  EXPECT_GE(took, 90ms);
  EXPECT_LT(took, 100ms + 400ms);
  // During the reconnect backoff the answer comes at once.
  start = Clock::now();
  EXPECT_EQ(inst.acquire(specs, 0).outcome, Outcome::Unavailable);
  EXPECT_LT(Clock::now() - start, 50ms);
  EXPECT_FALSE(inst.stats.reachable());
  EXPECT_EQ(inst.stats.degraded_total(), 2u);
  server.thaw();
}

TEST(RedisLimiter, RecoversWhenRedisReturns) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Instance inst(server, FailMode::Closed, 100ms);
  const std::vector<LimitSpec> specs = {
      {.scope = "key:back", .unit = LimitUnit::Requests, .limit = 100, .window_ms = kHourMs}};
  ASSERT_TRUE(inst.acquire(specs, 0).admitted());
  server.stop();
  EXPECT_EQ(inst.acquire(specs, 0).outcome, Outcome::Unavailable);
  ASSERT_TRUE(server.start());  // empty: no persistence
  Decision d;
  const auto deadline = Clock::now() + 3s;
  do {
    d = inst.acquire(specs, 0);
    if (d.admitted()) break;
    std::this_thread::sleep_for(20ms);
  } while (Clock::now() < deadline);
  ASSERT_TRUE(d.admitted());
  EXPECT_FALSE(d.degraded);
  EXPECT_TRUE(inst.stats.reachable());
  EXPECT_EQ(d.limits[0].remaining, 99);  // counting resumed in the new (empty) Redis
  EXPECT_EQ(inst.field(specs[0], "cur"), 1);
}

TEST(RedisLimiter, AgreesWithTheLocalLimiter) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Instance inst(server, FailMode::Closed);
  LocalLimiter local;
  const std::vector<LimitSpec> specs = {
      {.scope = "key:same", .unit = LimitUnit::Requests, .limit = 7, .window_ms = kHourMs},
      {.scope = "key:same", .unit = LimitUnit::Tokens, .limit = 100, .window_ms = kHourMs}};
  for (int64_t tokens : {10, 30, 5, 50, 40, 1, 1, 1, 1}) {
    Decision r = inst.acquire(specs, tokens);
    Decision l = local.try_acquire(specs, tokens);
    ASSERT_EQ(r.outcome, l.outcome) << tokens;
    for (size_t i = 0; i < specs.size(); ++i) {
      EXPECT_EQ(r.limits[i].remaining, l.limits[i].remaining);
      EXPECT_EQ(r.limits[i].fits, l.limits[i].fits);
    }
  }
}

}  // namespace
}  // namespace ondol::limits
