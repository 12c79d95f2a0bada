#include "gateway/router/route_table.h"

#include <fmt/format.h>

#include "gateway/router/strategy.h"

namespace ondol::gateway {

Result<std::shared_ptr<RouteTable>> RouteTable::build(std::shared_ptr<const GatewayConfig> config,
                                                      const RouteTable* previous,
                                                      metrics::Registry* registry) {
  auto table = std::make_shared<RouteTable>();
  table->config_ = config;
  std::unordered_map<std::string, std::shared_ptr<DeploymentState>> carried;
  if (previous) {
    for (const auto& d : previous->deployments_) carried.emplace(d->config.id, d->state);
  }
  for (const auto& dc : config->deployments) {
    auto d = std::make_unique<Deployment>();
    d->config = dc;
    auto backend = make_backend(dc, registry);
    if (!backend) return backend.error();
    d->backend = std::move(*backend);
    auto it = carried.find(dc.id);
    d->state = it != carried.end() ? it->second : std::make_shared<DeploymentState>();
    table->deployments_.push_back(std::move(d));
  }
  for (const auto& d : table->deployments_) {
    auto it = table->by_name_.find(d->config.model_name);
    ModelGroup* group;
    if (it == table->by_name_.end()) {
      table->groups_.push_back(std::make_unique<ModelGroup>());
      group = table->groups_.back().get();
      group->name = d->config.model_name;
      table->by_name_.emplace(group->name, group);
    } else {
      group = const_cast<ModelGroup*>(it->second);
    }
    group->deployments.push_back(d.get());
  }
  for (const auto& fb : config->router.fallbacks) {
    auto primary = table->by_name_.find(fb.model_name);
    if (primary == table->by_name_.end())
      return make_error(fmt::format("fallbacks: unknown model_name '{}'", fb.model_name));
    auto* group = const_cast<ModelGroup*>(primary->second);
    for (const auto& name : fb.fallbacks) {
      auto target = table->by_name_.find(name);
      if (target == table->by_name_.end())
        return make_error(fmt::format("fallbacks: unknown model_name '{}'", name));
      if (target->second != group) group->fallbacks.push_back(target->second);
    }
  }
  return table;
}

const ModelGroup* RouteTable::find(std::string_view model) const {
  auto it = by_name_.find(model);
  return it == by_name_.end() ? nullptr : it->second;
}

AttemptPlanner::AttemptPlanner(const ModelGroup& primary, const RouterSettings& settings)
    : settings_(settings) {
  groups_.push_back(&primary);
  for (const auto* fb : primary.fallbacks) groups_.push_back(fb);
  tried_.assign(primary.deployments.size(), false);
}

Deployment* AttemptPlanner::next(Clock::time_point now, std::mt19937_64& rng) {
  std::vector<Candidate> candidates;
  while (group_index_ < groups_.size()) {
    const ModelGroup& g = *groups_[group_index_];
    if (attempts_in_group_ > settings_.num_retries) {
      ++group_index_;
      attempts_in_group_ = 0;
      if (group_index_ < groups_.size())
        tried_.assign(groups_[group_index_]->deployments.size(), false);
      continue;
    }
    candidates.clear();
    bool any_fresh = false;
    bool any_warm = false;
    for (size_t i = 0; i < g.deployments.size(); ++i) {
      const Deployment& d = *g.deployments[i];
      bool warm = !d.state->cooling_down(now);
      any_warm |= warm;
      any_fresh |= warm && !tried_[i];
      candidates.push_back({.state = d.state.get(), .weight = d.config.weight,
                            .order = d.config.order, .usable = warm && !tried_[i]});
    }
    if (!any_fresh) {  // every healthy deployment was tried: a retry may repeat one
      for (size_t i = 0; i < candidates.size(); ++i)
        candidates[i].usable = !g.deployments[i]->state->cooling_down(now);
    }
    int pick = any_warm ? pick_candidate(settings_.routing_strategy, candidates, rng) : -1;
    if (pick < 0) {  // the whole group is cooling down: on to the fallbacks
      attempts_in_group_ = settings_.num_retries + 1;
      continue;
    }
    ++attempts_in_group_;
    ++attempts_total_;
    tried_[static_cast<size_t>(pick)] = true;
    return g.deployments[static_cast<size_t>(pick)];
  }
  if (attempts_total_ == 0 && !groups_.empty() && !groups_[0]->deployments.empty()) {
    // Everything is cooling down. Trying is better than refusing without a try.
    const ModelGroup& g = *groups_[0];
    candidates.clear();
    for (const auto* d : g.deployments)
      candidates.push_back({.state = d->state.get(), .weight = d->config.weight,
                            .order = d->config.order, .usable = true});
    int pick = pick_candidate(settings_.routing_strategy, candidates, rng);
    ++attempts_total_;
    return pick < 0 ? nullptr : g.deployments[static_cast<size_t>(pick)];
  }
  return nullptr;
}

}  // namespace ondol::gateway
