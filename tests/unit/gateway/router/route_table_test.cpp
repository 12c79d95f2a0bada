#include "gateway/router/route_table.h"

#include <gtest/gtest.h>

#include <set>

namespace ondol::gateway {
namespace {

DeploymentConfig mock(std::string name, std::string id, int weight = 1) {
  DeploymentConfig d;
  d.model_name = std::move(name);
  d.model = "mock/" + d.model_name;
  d.provider = "mock";
  d.kind = ProviderKind::Mock;
  d.upstream_model = d.model_name;
  d.id = std::move(id);
  d.weight = weight;
  return d;
}

std::shared_ptr<GatewayConfig> config(int num_retries) {
  auto c = std::make_shared<GatewayConfig>();
  c->deployments = {mock("a", "a1"), mock("a", "a2"), mock("b", "b1"), mock("c", "c1")};
  c->router.num_retries = num_retries;
  c->router.allowed_fails = 1;
  c->router.cooldown_time_s = 60;
  c->router.fallbacks = {{"a", {"b", "c"}}};
  return c;
}

TEST(RouteTable, GroupsAndFallbacks) {
  auto t = RouteTable::build(config(1), nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message;
  const ModelGroup* a = (*t)->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->deployments.size(), 2u);
  ASSERT_EQ(a->fallbacks.size(), 2u);
  EXPECT_EQ(a->fallbacks[0]->name, "b");
  EXPECT_EQ(a->fallbacks[1]->name, "c");
  EXPECT_EQ((*t)->find("zzz"), nullptr);
}

TEST(RouteTable, UnknownFallbackIsAnError) {
  auto c = config(0);
  c->router.fallbacks = {{"a", {"nope"}}};
  EXPECT_FALSE(RouteTable::build(c, nullptr).ok());
}

TEST(RouteTable, ReloadKeepsRuntimeStateById) {
  auto t1 = RouteTable::build(config(0), nullptr);
  ASSERT_TRUE(t1.ok());
  (*t1)->deployments()[0]->state->record_failure(Clock::now(), 1, 60);
  auto t2 = RouteTable::build(config(0), t1->get());
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ((*t2)->deployments()[0]->state, (*t1)->deployments()[0]->state);
  EXPECT_TRUE((*t2)->deployments()[0]->state->cooling_down(Clock::now()));
}

TEST(AttemptPlanner, RetriesInGroupThenFallbacksInOrder) {
  auto t = RouteTable::build(config(1), nullptr);
  ASSERT_TRUE(t.ok());
  const ModelGroup* a = (*t)->find("a");
  AttemptPlanner plan(*a, (*t)->config().router);
  std::mt19937_64 rng(9);
  auto now = Clock::now();
  Deployment* first = plan.next(now, rng);
  Deployment* second = plan.next(now, rng);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->config.model_name, "a");
  EXPECT_EQ(second->config.model_name, "a");
  EXPECT_NE(first, second);  // the retry goes to the untried deployment
  EXPECT_FALSE(plan.in_fallback());
  Deployment* third = plan.next(now, rng);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->config.model_name, "b");
  EXPECT_TRUE(plan.in_fallback());
  Deployment* fourth = plan.next(now, rng);  // b has one deployment: its retry repeats it
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->config.model_name, "b");
  EXPECT_EQ(plan.next(now, rng)->config.model_name, "c");
  EXPECT_EQ(plan.next(now, rng)->config.model_name, "c");
  EXPECT_EQ(plan.next(now, rng), nullptr);
  EXPECT_EQ(plan.attempts(), 6);
}

TEST(AttemptPlanner, SkipsCooledDownDeploymentsAndGroups) {
  auto t = RouteTable::build(config(0), nullptr);
  ASSERT_TRUE(t.ok());
  auto now = Clock::now();
  for (const auto& d : (*t)->deployments()) {
    if (d->config.model_name == "a" || d->config.id == "b1") d->state->record_failure(now, 1, 60);
  }
  AttemptPlanner plan(*(*t)->find("a"), (*t)->config().router);
  std::mt19937_64 rng(2);
  Deployment* d = plan.next(now, rng);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->config.id, "c1");  // a and b are cooling down
  EXPECT_EQ(plan.next(now, rng), nullptr);
}

TEST(AttemptPlanner, EverythingCoolingDownStillTriesOnce) {
  auto t = RouteTable::build(config(2), nullptr);
  ASSERT_TRUE(t.ok());
  auto now = Clock::now();
  for (const auto& d : (*t)->deployments()) d->state->record_failure(now, 1, 60);
  AttemptPlanner plan(*(*t)->find("a"), (*t)->config().router);
  std::mt19937_64 rng(2);
  Deployment* d = plan.next(now, rng);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->config.model_name, "a");
  EXPECT_EQ(plan.next(now, rng), nullptr);
}

}  // namespace
}  // namespace ondol::gateway
