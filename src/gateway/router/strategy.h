// Routing strategies: which deployment of a group serves the next attempt. Pure functions of
// the candidates' state, so they are tested without a network.
#pragma once

#include <cstdint>
#include <random>
#include <span>

#include "gateway/config/config.h"
#include "gateway/router/deployment_state.h"

namespace ondol::gateway {

struct Candidate {
  const DeploymentState* state = nullptr;
  int weight = 1;
  int order = 0;        // 0: unset (after every explicit order)
  bool usable = true;   // false: already tried this request, or cooling down
};

// Returns the index of the chosen candidate, or -1 when none is usable. Only candidates of the
// lowest `order` among the usable ones are considered.
int pick_candidate(RoutingStrategy strategy, std::span<const Candidate> candidates,
                   std::mt19937_64& rng);

}  // namespace ondol::gateway
