#include "gateway/router/strategy.h"

#include <climits>
#include <vector>

namespace ondol::gateway {
namespace {

int effective_order(const Candidate& c) { return c.order > 0 ? c.order : INT_MAX; }

}  // namespace

int pick_candidate(RoutingStrategy strategy, std::span<const Candidate> candidates,
                   std::mt19937_64& rng) {
  int best_order = INT_MAX;
  bool any = false;
  for (const auto& c : candidates) {
    if (!c.usable) continue;
    any = true;
    best_order = std::min(best_order, effective_order(c));
  }
  if (!any) return -1;
  auto eligible = [&](const Candidate& c) { return c.usable && effective_order(c) == best_order; };

  switch (strategy) {
    case RoutingStrategy::SimpleShuffle: {
      int64_t total = 0;
      for (const auto& c : candidates)
        if (eligible(c)) total += std::max(0, c.weight);
      if (total <= 0) {  // all weights zero: uniform among eligible
        std::vector<int> idx;
        for (int i = 0; i < static_cast<int>(candidates.size()); ++i)
          if (eligible(candidates[i])) idx.push_back(i);
        return idx[std::uniform_int_distribution<size_t>(0, idx.size() - 1)(rng)];
      }
      int64_t r = std::uniform_int_distribution<int64_t>(0, total - 1)(rng);
      for (int i = 0; i < static_cast<int>(candidates.size()); ++i) {
        if (!eligible(candidates[i])) continue;
        r -= std::max(0, candidates[i].weight);
        if (r < 0) return i;
      }
      return -1;  // unreachable
    }
    case RoutingStrategy::LeastBusy: {
      // Fewest in flight; ties broken at random so equal deployments share the load.
      int best = -1;
      int best_load = INT_MAX;
      int ties = 0;
      for (int i = 0; i < static_cast<int>(candidates.size()); ++i) {
        if (!eligible(candidates[i])) continue;
        int load = candidates[i].state->in_flight.load(std::memory_order_relaxed);
        if (load < best_load) {
          best = i;
          best_load = load;
          ties = 1;
        } else if (load == best_load &&
                   std::uniform_int_distribution<int>(0, ties++)(rng) == 0) {
          best = i;
        }
      }
      return best;
    }
    case RoutingStrategy::LatencyBased: {
      // Unknown latency first (so every deployment gets measured), then the lowest average.
      int best = -1;
      double best_latency = 0;
      for (int i = 0; i < static_cast<int>(candidates.size()); ++i) {
        if (!eligible(candidates[i])) continue;
        double l = candidates[i].state->latency_ewma_seconds();
        if (l < 0) return i;
        if (best < 0 || l < best_latency) {
          best = i;
          best_latency = l;
        }
      }
      return best;
    }
  }
  return -1;
}

}  // namespace ondol::gateway
