// LocalLimiter: check-and-consume over several limits with a clock driven by the test, settling,
// cleanup of idle counters, and exactness under concurrent threads.
#include "limits/local_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace ondol::limits {
namespace {

struct FakeClock {
  std::atomic<int64_t> now_ms{1'000'000'020'000};  // 20 s into a minute
  ClockMs fn() {
    return [this] { return now_ms.load(); };
  }
};

TEST(LocalLimiter, AdmitsTheLimitThenRefusesUntilRetryAfter) {
  FakeClock clock;
  LocalLimiter limiter(clock.fn());
  std::vector<LimitSpec> specs = {requests_per_minute("key:a", 5)};
  for (int i = 0; i < 5; ++i) {
    Decision d = limiter.try_acquire(specs, 0);
    ASSERT_TRUE(d.admitted()) << i;
    EXPECT_EQ(d.limits[0].remaining, 4 - i);
  }
  Decision denied = limiter.try_acquire(specs, 0);
  ASSERT_EQ(denied.outcome, Outcome::Denied);
  EXPECT_EQ(denied.limits[0].remaining, 0);
  ASSERT_GT(denied.retry_after_ms, 0);
  clock.now_ms += denied.retry_after_ms - 1;
  EXPECT_FALSE(limiter.try_acquire(specs, 0).admitted());
  clock.now_ms += 1;
  EXPECT_TRUE(limiter.try_acquire(specs, 0).admitted());
}

TEST(LocalLimiter, NothingIsChargedWhenOneLimitRefuses) {
  FakeClock clock;
  LocalLimiter limiter(clock.fn());
  std::vector<LimitSpec> specs = {requests_per_minute("key:a", 100),
                                  tokens_per_minute("user:u", 1000),
                                  tokens_per_day("tier:free", 100'000)};
  ASSERT_TRUE(limiter.try_acquire(specs, 600).admitted());
  Decision d = limiter.try_acquire(specs, 600);  // the user's tokens/min refuses
  ASSERT_EQ(d.outcome, Outcome::Denied);
  EXPECT_TRUE(d.limits[0].fits);
  EXPECT_FALSE(d.limits[1].fits);
  EXPECT_TRUE(d.limits[2].fits);
  EXPECT_EQ(limiter.peek(specs[0]).current, 1);
  EXPECT_EQ(limiter.peek(specs[1]).current, 600);
  EXPECT_EQ(limiter.peek(specs[2]).current, 600);
  EXPECT_TRUE(d.ticket.tokens.empty());
  // A request that fits all limits is still admitted afterwards.
  EXPECT_TRUE(limiter.try_acquire(specs, 400).admitted());
  EXPECT_EQ(limiter.peek(specs[0]).current, 2);
}

TEST(LocalLimiter, SettleRefundsAndChargesTheDifference) {
  FakeClock clock;
  LocalLimiter limiter(clock.fn());
  std::vector<LimitSpec> specs = {tokens_per_minute("key:a", 1000), tokens_per_day("key:a", 5000)};
  Decision d = limiter.try_acquire(specs, 800);
  ASSERT_TRUE(d.admitted());
  EXPECT_EQ(d.ticket.source, Ticket::Source::Local);
  EXPECT_FALSE(limiter.try_acquire(specs, 300).admitted());
  limiter.settle_now(d.ticket, 100);  // the request used 100 of the 800 estimated
  EXPECT_EQ(limiter.peek(specs[0]).current, 100);
  EXPECT_EQ(limiter.peek(specs[1]).current, 100);
  Decision more = limiter.try_acquire(specs, 900);
  ASSERT_TRUE(more.admitted());
  limiter.settle_now(more.ticket, 1200);  // used more than estimated: charged on top
  EXPECT_EQ(limiter.peek(specs[0]).current, 1300);

  // The refund of a request charged in the previous minute goes to that minute's count.
  std::vector<LimitSpec> other = {tokens_per_minute("key:b", 1000)};
  Decision earlier = limiter.try_acquire(other, 500);
  ASSERT_TRUE(earlier.admitted());
  clock.now_ms += kMinuteMs;
  limiter.settle_now(earlier.ticket, 100);
  EXPECT_EQ(limiter.peek(other[0]).previous, 100);
  EXPECT_EQ(limiter.peek(other[0]).current, 0);
  // A denied decision's ticket is empty and settles nothing.
  Decision denied = limiter.try_acquire(other, 100'000);
  ASSERT_FALSE(denied.admitted());
  EXPECT_TRUE(denied.too_large);
  limiter.settle_now(denied.ticket, 0);
  EXPECT_EQ(limiter.peek(other[0]).previous, 100);
}

TEST(LocalLimiter, IdleCountersAreDropped) {
  FakeClock clock;
  LocalLimiter limiter(clock.fn(), /*sweep_every_ops=*/1);
  for (int i = 0; i < 1000; ++i) {
    std::vector<LimitSpec> one = {requests_per_minute("user:" + std::to_string(i), 10)};
    ASSERT_TRUE(limiter.try_acquire(one, 0).admitted());
  }
  EXPECT_EQ(limiter.num_counters(), 1000u);
  clock.now_ms += 2 * kMinuteMs;
  // An operation on each shard sweeps it (every operation here); the new counters stay.
  for (int i = 0; i < 2000; ++i) {
    std::vector<LimitSpec> live = {requests_per_minute("live:" + std::to_string(i), 1)};
    ASSERT_TRUE(limiter.try_acquire(live, 0).admitted());
  }
  EXPECT_EQ(limiter.num_counters(), 2000u);
}

TEST(LocalLimiter, ConcurrentThreadsAdmitExactlyTheLimit) {
  FakeClock clock;
  LocalLimiter limiter(clock.fn());
  constexpr int kThreads = 8;
  constexpr int kAttempts = 2000;
  constexpr int64_t kLimit = 3000;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Two orders of the same counters: locking must not deadlock whatever the order.
      std::vector<LimitSpec> specs = {requests_per_minute("team:x", kLimit),
                                      tokens_per_minute("tier:pro", 1'000'000),
                                      requests_per_minute("user:" + std::to_string(t), 1'000'000)};
      if (t % 2) std::swap(specs[0], specs[1]);
      for (int i = 0; i < kAttempts; ++i) {
        Decision d = limiter.try_acquire(specs, 10);
        if (d.admitted()) admitted.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(admitted.load(), kLimit);
  EXPECT_EQ(limiter.peek(requests_per_minute("team:x", kLimit)).current, kLimit);
  EXPECT_EQ(limiter.peek(tokens_per_minute("tier:pro", 1'000'000)).current, kLimit * 10);
}

}  // namespace
}  // namespace ondol::limits
