#include "gateway/router/strategy.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace ondol::gateway {
namespace {

TEST(PickCandidate, SimpleShuffleFollowsWeights) {
  DeploymentState a, b;
  std::vector<Candidate> c = {{.state = &a, .weight = 9}, {.state = &b, .weight = 1}};
  std::mt19937_64 rng(42);
  std::array<int, 2> hits{};
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) ++hits[pick_candidate(RoutingStrategy::SimpleShuffle, c, rng)];
  // 10 % canary within two points: binomial sd is 0.2 % here.
  EXPECT_NEAR(hits[1] / double(kDraws), 0.10, 0.02);
}

TEST(PickCandidate, ZeroWeightIsNeverPickedWhenOthersHaveWeight) {
  DeploymentState a, b;
  std::vector<Candidate> c = {{.state = &a, .weight = 0}, {.state = &b, .weight = 3}};
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(pick_candidate(RoutingStrategy::SimpleShuffle, c, rng), 1);
}

TEST(PickCandidate, LeastBusyPicksFewestInFlight) {
  DeploymentState a, b, c;
  a.in_flight = 5;
  b.in_flight = 1;
  c.in_flight = 3;
  std::vector<Candidate> cs = {{.state = &a}, {.state = &b}, {.state = &c}};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(pick_candidate(RoutingStrategy::LeastBusy, cs, rng), 1);
  cs[1].usable = false;  // already tried: next least busy
  EXPECT_EQ(pick_candidate(RoutingStrategy::LeastBusy, cs, rng), 2);
}

TEST(PickCandidate, LeastBusyBreaksTiesAcrossAll) {
  DeploymentState a, b;
  std::vector<Candidate> cs = {{.state = &a}, {.state = &b}};
  std::mt19937_64 rng(3);
  std::array<int, 2> hits{};
  for (int i = 0; i < 2000; ++i) ++hits[pick_candidate(RoutingStrategy::LeastBusy, cs, rng)];
  EXPECT_GT(hits[0], 800);
  EXPECT_GT(hits[1], 800);
}

TEST(PickCandidate, LatencyBasedTriesUnknownFirstThenFastest) {
  DeploymentState a, b, c;
  a.observe_latency(0.5);
  b.observe_latency(0.1);
  std::vector<Candidate> cs = {{.state = &a}, {.state = &b}, {.state = &c}};
  std::mt19937_64 rng(3);
  EXPECT_EQ(pick_candidate(RoutingStrategy::LatencyBased, cs, rng), 2);  // c unmeasured
  c.observe_latency(0.3);
  EXPECT_EQ(pick_candidate(RoutingStrategy::LatencyBased, cs, rng), 1);
}

TEST(PickCandidate, LowestOrderFirst) {
  DeploymentState a, b, c;
  std::vector<Candidate> cs = {{.state = &a, .order = 2}, {.state = &b, .order = 1},
                               {.state = &c, .order = 0}};
  std::mt19937_64 rng(5);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(pick_candidate(RoutingStrategy::SimpleShuffle, cs, rng), 1);
  cs[1].usable = false;
  EXPECT_EQ(pick_candidate(RoutingStrategy::SimpleShuffle, cs, rng), 0);
  cs[0].usable = false;
  EXPECT_EQ(pick_candidate(RoutingStrategy::SimpleShuffle, cs, rng), 2);  // unset order: last
  cs[2].usable = false;
  EXPECT_EQ(pick_candidate(RoutingStrategy::SimpleShuffle, cs, rng), -1);
}

}  // namespace
}  // namespace ondol::gateway
