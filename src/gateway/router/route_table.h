// The routing snapshot: model groups, their deployments with backends and runtime state, and
// fallbacks, built once from a validated config. Immutable after build; a reload builds a new
// one and swaps the pointer, while requests in flight keep the snapshot they started with.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/backends/backend.h"
#include "gateway/config/config.h"
#include "gateway/router/deployment_state.h"

namespace ondol::gateway {

struct DeploymentSeries;  // gateway_metrics.h

struct Deployment {
  DeploymentConfig config;
  std::unique_ptr<Backend> backend;
  std::shared_ptr<DeploymentState> state;
  DeploymentSeries* series = nullptr;  // metrics, resolved at build
};

struct ModelGroup {
  std::string name;
  std::vector<Deployment*> deployments;
  std::vector<const ModelGroup*> fallbacks;
};

class RouteTable {
 public:
  // `previous` (may be null) lends its runtime state to deployments with the same id.
  // `registry` (may be null) receives the metrics of engines the table starts.
  static Result<std::shared_ptr<RouteTable>> build(std::shared_ptr<const GatewayConfig> config,
                                                   const RouteTable* previous,
                                                   metrics::Registry* registry = nullptr);

  const GatewayConfig& config() const { return *config_; }
  const ModelGroup* find(std::string_view model) const;
  const std::vector<std::unique_ptr<Deployment>>& deployments() const { return deployments_; }
  const std::vector<std::unique_ptr<ModelGroup>>& groups() const { return groups_; }

 private:
  std::shared_ptr<const GatewayConfig> config_;
  std::vector<std::unique_ptr<Deployment>> deployments_;
  std::vector<std::unique_ptr<ModelGroup>> groups_;
  std::unordered_map<std::string_view, const ModelGroup*> by_name_;
};

// The sequence of attempts for one request: up to 1 + num_retries attempts in the requested
// group (untried deployments first), then the same in each fallback group. Cooled-down
// deployments are skipped; if every deployment everywhere is cooling down, the primary group is
// tried once anyway rather than failing without trying.
class AttemptPlanner {
 public:
  AttemptPlanner(const ModelGroup& primary, const RouterSettings& settings);

  // Next deployment to try, or nullptr when the plan is exhausted.
  Deployment* next(Clock::time_point now, std::mt19937_64& rng);
  bool in_fallback() const { return group_index_ > 0; }
  int attempts() const { return attempts_total_; }

 private:
  std::vector<const ModelGroup*> groups_;
  const RouterSettings& settings_;
  size_t group_index_ = 0;
  int attempts_in_group_ = 0;
  int attempts_total_ = 0;
  std::vector<bool> tried_;
};

}  // namespace ondol::gateway
