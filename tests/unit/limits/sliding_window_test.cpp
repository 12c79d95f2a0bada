// The window arithmetic at its edges: the last millisecond of a window, the first request of the
// next one, long idle gaps, day windows, refunds, and retry-after values that are exact (the
// charge fits at now + retry_after and not a millisecond before).
#include "limits/sliding_window.h"

#include <gtest/gtest.h>

namespace ondol::limits {
namespace {

constexpr int64_t W = kMinuteMs;

WindowCounter rolled(WindowCounter c, int64_t now, int64_t window = W) {
  roll(c, now, window);
  return c;
}

// Asserts that `cost` fits exactly `retry_after_ms` after `now`, and not one ms earlier.
void expect_exact_retry(const WindowCounter& c, int64_t now, int64_t window, int64_t limit,
                        int64_t cost) {
  WindowCheck denied = check(rolled(c, now, window), now, window, limit, cost);
  ASSERT_FALSE(denied.fits);
  ASSERT_GT(denied.retry_after_ms, 0);
  const int64_t at = now + denied.retry_after_ms;
  EXPECT_TRUE(check(rolled(c, at, window), at, window, limit, cost).fits) << "at " << at;
  EXPECT_FALSE(check(rolled(c, at - 1, window), at - 1, window, limit, cost).fits)
      << "at " << at - 1;
}

TEST(SlidingWindow, WindowStartsAreAlignedToTheEpoch) {
  EXPECT_EQ(window_start_for(0, W), 0);
  EXPECT_EQ(window_start_for(59'999, W), 0);
  EXPECT_EQ(window_start_for(60'000, W), 60'000);
  EXPECT_EQ(window_start_for(1'700'000'123'456, kDayMs), 1'699'920'000'000);  // 00:00 UTC
}

TEST(SlidingWindow, RollMovesCurrentToPreviousAtTheNextWindowOnly) {
  WindowCounter c{.window_start_ms = 0, .current = 7, .previous = 3};
  roll(c, 59'999, W);
  EXPECT_EQ(c.current, 7);
  EXPECT_EQ(c.previous, 3);
  roll(c, 60'000, W);
  EXPECT_EQ(c.window_start_ms, 60'000);
  EXPECT_EQ(c.current, 0);
  EXPECT_EQ(c.previous, 7);
  // A gap of more than one window: nothing of the old counts remains.
  WindowCounter d{.window_start_ms = 0, .current = 7, .previous = 3};
  roll(d, 120'000, W);
  EXPECT_EQ(d.current, 0);
  EXPECT_EQ(d.previous, 0);
  // A clock that steps back keeps the newer window.
  roll(d, 60'000, W);
  EXPECT_EQ(d.window_start_ms, 120'000);
}

TEST(SlidingWindow, AdmitsExactlyTheLimitWithinAWindow) {
  WindowCounter c;
  int admitted = 0;
  for (int i = 0; i < 15; ++i) {
    const int64_t now = 1000 + i;
    roll(c, now, W);
    WindowCheck r = check(c, now, W, 10, 1);
    if (r.fits) {
      ++admitted;
      c.current += 1;
      EXPECT_EQ(r.remaining, 10 - admitted);
    } else {
      EXPECT_EQ(r.remaining, 0);
    }
  }
  EXPECT_EQ(admitted, 10);
}

TEST(SlidingWindow, LastMillisecondOfAWindowAndFirstOfTheNext) {
  WindowCounter c{.window_start_ms = 0, .current = 10, .previous = 0};
  // At the last millisecond of the full window, nothing fits until the next window's weight
  // has decayed: retry = 1 ms to the edge + 6 s (10 * (60 - 6) / 60 = 9, leaving room for 1).
  WindowCheck last = check(rolled(c, 59'999), 59'999, W, 10, 1);
  EXPECT_FALSE(last.fits);
  EXPECT_EQ(last.retry_after_ms, 6'001);
  // Exactly at the edge the previous window still weighs in fully: the first request of the
  // new window is refused, and both answers name the same moment (66 000 ms).
  WindowCheck first = check(rolled(c, 60'000), 60'000, W, 10, 1);
  EXPECT_FALSE(first.fits);
  EXPECT_EQ(first.retry_after_ms, 6'000);
  EXPECT_TRUE(check(rolled(c, 66'000), 66'000, W, 10, 1).fits);
  EXPECT_FALSE(check(rolled(c, 65'999), 65'999, W, 10, 1).fits);
  expect_exact_retry(c, 59'999, W, 10, 1);
  expect_exact_retry(c, 60'000, W, 10, 1);
}

TEST(SlidingWindow, WeightedPreviousWindowDecaysLinearly) {
  // 30 s into the window, a previous count of 10 weighs 5.
  WindowCounter c{.window_start_ms = 60'000, .current = 2, .previous = 10};
  WindowCheck r = check(c, 90'000, W, 10, 1);
  EXPECT_TRUE(r.fits);
  EXPECT_EQ(r.remaining, 2);  // 10 - (5 + 2 + 1)
  WindowCheck big = check(c, 90'000, W, 10, 4);
  EXPECT_FALSE(big.fits);
  EXPECT_EQ(big.remaining, 3);
  expect_exact_retry(c, 90'000, W, 10, 4);
}

TEST(SlidingWindow, LongIdleGapStartsFresh) {
  WindowCounter c{.window_start_ms = 0, .current = 10, .previous = 10};
  const int64_t now = 10 * kDayMs + 5;
  WindowCheck r = check(rolled(c, now), now, W, 10, 1);
  EXPECT_TRUE(r.fits);
  EXPECT_EQ(r.remaining, 9);
}

TEST(SlidingWindow, DayWindows) {
  // 1000 tokens/day spent at 23:00 UTC; at 01:00 the next day 23/24 of them still count.
  const int64_t day0 = 20'000 * kDayMs;
  WindowCounter c{.window_start_ms = day0, .current = 1000, .previous = 0};
  const int64_t one_am = day0 + kDayMs + 3'600'000;
  WindowCheck r = check(rolled(c, one_am, kDayMs), one_am, kDayMs, 1000, 100);
  EXPECT_FALSE(r.fits);
  EXPECT_EQ(r.remaining, 41);  // floor(1000 - 1000 * 23 / 24)
  // 100 tokens fit once only 900 of the previous day weigh: at 02:24.
  EXPECT_EQ(r.retry_after_ms, 8'640'000 - 3'600'000);
  expect_exact_retry(c, one_am, kDayMs, 1000, 100);
  // Before midnight the whole day's count holds: wait until the next day's decay allows it.
  expect_exact_retry(c, day0 + 23 * 3'600'000, kDayMs, 1000, 100);
}

TEST(SlidingWindow, ChargeLargerThanTheLimitNeverFits) {
  WindowCounter c;
  WindowCheck r = check(c, 0, W, 1000, 1001);
  EXPECT_FALSE(r.fits);
  EXPECT_TRUE(r.too_large);
  EXPECT_EQ(r.remaining, 1000);
  WindowCheck zero = check(c, 0, W, 0, 1);
  EXPECT_FALSE(zero.fits);
  EXPECT_TRUE(zero.too_large);
}

TEST(SlidingWindow, SettleCorrectsTheChargedWindow) {
  WindowCounter c{.window_start_ms = 0, .current = 500, .previous = 0};
  settle(c, 0, W, -400);  // used 100 of an estimate of 500
  EXPECT_EQ(c.current, 100);
  settle(c, 0, W, 50);  // used more than estimated
  EXPECT_EQ(c.current, 150);
  roll(c, 60'000, W);
  settle(c, 0, W, -150);  // the charged window is now the previous one
  EXPECT_EQ(c.previous, 0);
  EXPECT_EQ(c.current, 0);
  settle(c, 60'000, W, -30);  // a refund may take a counter below zero: room, not debt
  EXPECT_EQ(c.current, -30);
  WindowCheck r = check(c, 60'000, W, 100, 100);
  EXPECT_TRUE(r.fits);
  EXPECT_EQ(r.remaining, 30);
  WindowCheck over = check(c, 60'000, W, 100, 10);
  EXPECT_EQ(over.remaining, 100);  // never reported above the limit
  roll(c, 180'000, W);
  settle(c, 60'000, W, -1000);  // too old: its counts no longer matter
  EXPECT_EQ(c.current, 0);
  EXPECT_EQ(c.previous, 0);
}

TEST(SlidingWindow, EvaluateAdmitsOnlyWhenEveryLimitFits) {
  std::vector<LimitSpec> specs = {requests_per_minute("key:a", 100),
                                  tokens_per_minute("user:u", 1000),
                                  tokens_per_day("tier:free", 5000)};
  std::vector<WindowCounter> counters = {{.window_start_ms = 0, .current = 10},
                                         {.window_start_ms = 0, .current = 900},
                                         {.window_start_ms = 0, .current = 100}};
  Decision ok = evaluate(counters, specs, 50, 1000);
  EXPECT_TRUE(ok.admitted());
  EXPECT_EQ(ok.limits[0].remaining, 89);
  EXPECT_EQ(ok.limits[1].remaining, 50);
  EXPECT_EQ(ok.limits[2].remaining, 4850);
  ASSERT_EQ(ok.ticket.tokens.size(), 2u);  // token counters only
  EXPECT_EQ(ok.ticket.tokens[0].counter_key, "user:u|tokens|60000");
  EXPECT_EQ(ok.ticket.tokens[1].window_ms, kDayMs);
  EXPECT_EQ(ok.ticket.estimated_tokens, 50);

  Decision denied = evaluate(counters, specs, 150, 1000);
  EXPECT_EQ(denied.outcome, Outcome::Denied);
  EXPECT_TRUE(denied.limits[0].fits);
  EXPECT_FALSE(denied.limits[1].fits);
  EXPECT_TRUE(denied.ticket.tokens.empty());
  EXPECT_EQ(denied.retry_after_ms, denied.limits[1].retry_after_ms);
  EXPECT_GT(denied.retry_after_ms, 0);
}

TEST(SlidingWindow, RetryAfterOfSeveralLimitsIsTheLongestWait) {
  std::vector<LimitSpec> specs = {requests_per_minute("key:a", 10),
                                  tokens_per_minute("key:a", 1000)};
  // Requests refuse until 6 s into the next window; tokens until 30 s into it.
  std::vector<WindowCounter> counters = {{.window_start_ms = 0, .current = 10},
                                         {.window_start_ms = 0, .current = 1000}};
  Decision d = evaluate(counters, specs, 500, 59'000);
  EXPECT_EQ(d.outcome, Outcome::Denied);
  EXPECT_EQ(d.limits[0].retry_after_ms, 1'000 + 6'000);
  EXPECT_EQ(d.limits[1].retry_after_ms, 1'000 + 30'000);
  EXPECT_EQ(d.retry_after_ms, 31'000);
  EXPECT_EQ(d.retry_after_seconds(), 31);
}

TEST(RateLimitHeaders, NameTheTightestLimitOfEachUnit) {
  Decision d;
  d.outcome = Outcome::Denied;
  d.retry_after_ms = 1'200;
  d.limits = {{.unit = LimitUnit::Requests, .limit = 100, .remaining = 40},
              {.unit = LimitUnit::Requests, .limit = 10, .remaining = 3},
              {.unit = LimitUnit::Tokens, .limit = 1000, .remaining = 0, .fits = false}};
  auto h = ratelimit_headers(d);
  std::vector<std::pair<std::string, std::string>> want = {{"x-ratelimit-limit-requests", "10"},
                                                           {"x-ratelimit-remaining-requests", "3"},
                                                           {"x-ratelimit-limit-tokens", "1000"},
                                                           {"x-ratelimit-remaining-tokens", "0"},
                                                           {"retry-after", "2"}};
  EXPECT_EQ(h, want);
  d.outcome = Outcome::Admitted;
  EXPECT_EQ(ratelimit_headers(d).size(), 4u);
  d.retry_after_ms = 0;
  EXPECT_EQ(d.retry_after_seconds(), 1);
  d.outcome = Outcome::Unavailable;  // fail-closed: the counts are unknown
  std::vector<std::pair<std::string, std::string>> only_retry = {{"retry-after", "1"}};
  EXPECT_EQ(ratelimit_headers(d), only_retry);
}

}  // namespace
}  // namespace ondol::limits
