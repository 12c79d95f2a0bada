#include "bench/arrivals.h"

#include <cmath>
#include <random>

namespace ondol::bench {

std::vector<double> arrival_offsets(const ArrivalParams& params, size_t num_requests) {
  std::vector<double> offsets(num_requests, 0.0);
  if (!std::isfinite(params.request_rate) || params.request_rate <= 0) return offsets;
  // A distinct stream from the datasets' (which use the seed as is).
  std::mt19937_64 rng(params.seed ^ 0x9e3779b97f4a7c15ULL);
  double shape = params.burstiness > 0 ? params.burstiness : 1.0;
  std::gamma_distribution<double> interval(shape, 1.0 / (params.request_rate * shape));
  double t = 0;
  for (size_t i = 0; i < num_requests; ++i) {
    offsets[i] = t;
    t += interval(rng);
  }
  return offsets;
}

}  // namespace ondol::bench
