#include "bench/arrivals.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ondol::bench {
namespace {

struct GapStats {
  double mean = 0;
  double cv = 0;  // standard deviation / mean
};

GapStats gap_stats(const std::vector<double>& offsets) {
  std::vector<double> gaps;
  for (size_t i = 1; i < offsets.size(); ++i) gaps.push_back(offsets[i] - offsets[i - 1]);
  double sum = 0;
  for (double g : gaps) sum += g;
  double m = sum / static_cast<double>(gaps.size());
  double sq = 0;
  for (double g : gaps) sq += (g - m) * (g - m);
  return {m, std::sqrt(sq / static_cast<double>(gaps.size())) / m};
}

TEST(Arrivals, InfiniteRateSendsEverythingAtOnce) {
  auto offsets = arrival_offsets({.request_rate = INFINITY, .burstiness = 1, .seed = 0}, 100);
  ASSERT_EQ(offsets.size(), 100u);
  for (double t : offsets) EXPECT_EQ(t, 0.0);
}

TEST(Arrivals, PoissonMeanGapIsOneOverRateAndCvIsOne) {
  auto offsets = arrival_offsets({.request_rate = 50, .burstiness = 1.0, .seed = 7}, 40'000);
  EXPECT_EQ(offsets[0], 0.0);
  for (size_t i = 1; i < offsets.size(); ++i) ASSERT_GE(offsets[i], offsets[i - 1]);
  GapStats s = gap_stats(offsets);
  EXPECT_NEAR(s.mean, 1.0 / 50, 0.02 / 50);
  EXPECT_NEAR(s.cv, 1.0, 0.03);
}

TEST(Arrivals, GammaBurstinessSetsCvToOneOverSqrtK) {
  for (double k : {0.25, 4.0}) {
    auto offsets = arrival_offsets({.request_rate = 200, .burstiness = k, .seed = 11}, 40'000);
    GapStats s = gap_stats(offsets);
    EXPECT_NEAR(s.mean, 1.0 / 200, 0.03 / 200) << "k = " << k;
    EXPECT_NEAR(s.cv, 1.0 / std::sqrt(k), 0.05 / std::sqrt(k)) << "k = " << k;
  }
}

TEST(Arrivals, SeededScheduleIsReproducible) {
  ArrivalParams p{.request_rate = 10, .burstiness = 1, .seed = 3};
  EXPECT_EQ(arrival_offsets(p, 50), arrival_offsets(p, 50));
  ArrivalParams q = p;
  q.seed = 4;
  EXPECT_NE(arrival_offsets(p, 50), arrival_offsets(q, 50));
}

}  // namespace
}  // namespace ondol::bench
