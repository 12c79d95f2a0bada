#include "bench/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "bench/stats.h"

namespace ondol::bench {
namespace {

TEST(Stats, PercentileMatchesNumpyLinearInterpolation) {
  // numpy's documentation example: np.percentile([[10, 7, 4], [3, 2, 1]], 50) == 3.5.
  std::vector<double> doc = {1, 2, 3, 4, 7, 10};
  EXPECT_DOUBLE_EQ(percentile_sorted(doc, 50), 3.5);
  // Ranks p/100 * (n - 1), interpolated: values worked out by hand for n = 7.
  std::vector<double> v = {3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0};
  std::sort(v.begin(), v.end());
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 10), 1.3);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 25), 2.05);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 50), 3.0);
  EXPECT_NEAR(percentile_sorted(v, 90), 6.6, 1e-12);
  EXPECT_NEAR(percentile_sorted(v, 99), 8.76, 1e-12);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 100), 9.0);
  EXPECT_DOUBLE_EQ(percentile_sorted(std::vector<double>{}, 99), 0.0);
  EXPECT_DOUBLE_EQ(percentile_sorted(std::vector<double>{42}, 99), 42.0);
  // Python's statistics.fmean / pstdev of the same values.
  EXPECT_NEAR(mean(v), 3.7285714285714286, 1e-12);
  EXPECT_NEAR(population_std(v), 2.498407656153521, 1e-12);
}

RequestOutput ok(double start, double ttft, double latency, int64_t out_tokens,
                 std::vector<double> itl) {
  RequestOutput o;
  o.success = true;
  o.start_s = start;
  o.ttft_s = ttft;
  o.latency_s = latency;
  o.output_tokens = out_tokens;
  o.prompt_tokens = 10;
  o.itl_s = std::move(itl);
  return o;
}

std::vector<RequestOutput> synthetic_run() {
  RequestOutput failed;
  failed.error = "HTTP 503: overloaded";
  RequestOutput failed2 = failed;
  RequestOutput timeout;
  timeout.error = "timeout: no response";
  return {ok(0.0, 0.1, 0.5, 5, {0.1, 0.1, 0.1, 0.1}),           // TPOT (0.5 - 0.1) / 4 = 0.1
          ok(0.5, 0.2, 0.2, 1, {}),                             // one token: no TPOT sample
          ok(0.6, 0.3, 1.3, 11, std::vector<double>(10, 0.1)),  // TPOT 1.0 / 10 = 0.1
          failed,
          failed2,
          timeout};
}

TEST(Metrics, ThroughputTpotItlFromSyntheticTimings) {
  auto m = compute_metrics(synthetic_run(), 2.0, {}, {50, 99});
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 3);
  EXPECT_EQ(m.total_input, 30);
  EXPECT_EQ(m.total_output, 17);
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(m.output_throughput, 8.5);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 23.5);
  EXPECT_DOUBLE_EQ(m.request_goodput, 0);  // no SLO given
  EXPECT_NEAR(m.ttft.mean_ms, 200, 1e-9);
  EXPECT_NEAR(m.ttft.median_ms, 200, 1e-9);
  EXPECT_NEAR(m.ttft.std_ms, 81.64965809277261, 1e-9);
  EXPECT_NEAR(m.ttft.percentiles_ms[1].second, 298, 1e-9);  // rank 1.98 of {100, 200, 300}
  EXPECT_NEAR(m.tpot.mean_ms, 100, 1e-9);
  EXPECT_NEAR(m.itl.median_ms, 100, 1e-9);
  EXPECT_NEAR(m.e2el.median_ms, 500, 1e-9);
  ASSERT_EQ(m.error_counts.size(), 2u);
  EXPECT_EQ(m.error_counts[0].first, "HTTP 503: overloaded");
  EXPECT_EQ(m.error_counts[0].second, 2);
}

TEST(Metrics, GoodputCountsRequestsMeetingEverySlo) {
  auto run = synthetic_run();
  auto ttft = compute_metrics(run, 2.0, {.ttft_ms = 250}, {99});
  EXPECT_DOUBLE_EQ(ttft.request_goodput, 1.0);  // 100 and 200 ms of 100/200/300
  // A one-token request has TPOT 0 for goodput: only it meets 50 ms.
  auto tpot = compute_metrics(run, 2.0, {.tpot_ms = 50}, {99});
  EXPECT_DOUBLE_EQ(tpot.request_goodput, 0.5);
  auto all = compute_metrics(run, 2.0, {.ttft_ms = 250, .tpot_ms = 150, .e2el_ms = 400}, {99});
  EXPECT_DOUBLE_EQ(all.request_goodput, 0.5);  // e2el 500 ms fails the first
}

TEST(Metrics, ParseGoodputPercentilesAndMetricNames) {
  auto slo = parse_goodput({"ttft:200 tpot:50", "e2el:1000"});
  ASSERT_TRUE(slo);
  EXPECT_EQ(*slo->ttft_ms, 200);
  EXPECT_EQ(*slo->tpot_ms, 50);
  EXPECT_EQ(*slo->e2el_ms, 1000);
  EXPECT_FALSE(parse_goodput({"ttfb:20"}));
  EXPECT_FALSE(parse_goodput({"ttft"}));
  EXPECT_FALSE(parse_goodput({"ttft:fast"}));
  auto p = parse_percentiles("50,90, 99.9");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (std::vector<double>{50, 90, 99.9}));
  EXPECT_FALSE(parse_percentiles("101"));
  EXPECT_TRUE(parse_percentile_metrics("ttft,tpot,itl,e2el"));
  EXPECT_FALSE(parse_percentile_metrics("ttft,latency"));
  EXPECT_EQ(percentile_word(99), "99");
  EXPECT_EQ(percentile_word(99.9), "99.9");
}

TEST(Metrics, ThroughputOverTimeBucketsPerSecond) {
  // Request A: sent at 0.2 s, first chunk at 0.3 s, chunks every 0.5 s: 0.3, 0.8, 1.3; ends 1.4.
  // Request B: sent at 1.5 s, one chunk at 1.6 s, ends 1.7 s.
  std::vector<RequestOutput> outputs = {ok(0.2, 0.1, 1.2, 6, {0.5, 0.5}), ok(1.5, 0.1, 0.2, 1, {})};
  auto points = throughput_over_time(outputs, 2.0);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_DOUBLE_EQ(points[0].output_tokens_per_s, 4);  // two chunks of A, 2 tokens each
  EXPECT_DOUBLE_EQ(points[1].output_tokens_per_s, 3);  // A's last chunk (2) + B (1)
  EXPECT_DOUBLE_EQ(points[0].requests_per_s, 0);
  EXPECT_DOUBLE_EQ(points[1].requests_per_s, 2);
  // A last bucket of half a second is scaled to a rate.
  auto half = throughput_over_time(outputs, 1.5);
  ASSERT_EQ(half.size(), 2u);
  EXPECT_DOUBLE_EQ(half[1].requests_per_s, 4);
}

}  // namespace
}  // namespace ondol::bench
