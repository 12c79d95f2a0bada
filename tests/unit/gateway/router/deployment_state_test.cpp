#include "gateway/router/deployment_state.h"

#include <gtest/gtest.h>

namespace ondol::gateway {
namespace {

using std::chrono::seconds;

TEST(DeploymentState, CoolsDownAfterAllowedFailsWithinTheWindow) {
  DeploymentState s;
  auto t0 = Clock::now();
  EXPECT_FALSE(s.record_failure(t0, 3, 30));
  EXPECT_FALSE(s.record_failure(t0 + seconds(1), 3, 30));
  EXPECT_FALSE(s.cooling_down(t0 + seconds(2)));
  EXPECT_TRUE(s.record_failure(t0 + seconds(2), 3, 30));
  EXPECT_TRUE(s.cooling_down(t0 + seconds(3)));
  EXPECT_TRUE(s.cooling_down(t0 + seconds(31)));
  EXPECT_FALSE(s.cooling_down(t0 + seconds(33)));  // 2 s + 30 s cooldown has passed
  EXPECT_EQ(s.recent_failures(t0 + seconds(3)), 0);  // the window starts afresh
}

TEST(DeploymentState, OldFailuresLeaveTheWindow) {
  DeploymentState s;
  auto t0 = Clock::now();
  EXPECT_FALSE(s.record_failure(t0, 2, 10));
  // 61 s later the first failure no longer counts.
  EXPECT_FALSE(s.record_failure(t0 + seconds(61), 2, 10));
  EXPECT_FALSE(s.cooling_down(t0 + seconds(61)));
  EXPECT_TRUE(s.record_failure(t0 + seconds(62), 2, 10));
}

TEST(DeploymentState, ZeroCooldownNeverCools) {
  DeploymentState s;
  auto t0 = Clock::now();
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(s.record_failure(t0, 1, 0));
  EXPECT_FALSE(s.cooling_down(t0));
}

TEST(DeploymentState, LatencyMovingAverage) {
  DeploymentState s;
  EXPECT_LT(s.latency_ewma_seconds(), 0);
  s.observe_latency(1.0);
  EXPECT_DOUBLE_EQ(s.latency_ewma_seconds(), 1.0);
  s.observe_latency(2.0);
  EXPECT_DOUBLE_EQ(s.latency_ewma_seconds(), 1.0 + DeploymentState::kLatencyAlpha * 1.0);
}

}  // namespace
}  // namespace ondol::gateway
