// When each request is sent: vLLM's arrival process. Inter-arrival times are gamma-distributed
// with shape k = burstiness and mean 1/rate (k = 1: a Poisson process; the coefficient of
// variation is 1/sqrt(k)). The schedule is computed up front from the seed, so a run plan is
// reproducible and sending never drifts behind a sleeping loop's accumulated lateness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ondol::bench {

struct ArrivalParams {
  double request_rate = 0;  // requests/s; infinity (or <= 0): every request at time 0
  double burstiness = 1.0;  // gamma shape, > 0
  uint64_t seed = 0;
};

// Send times in seconds since the start of the run, ascending; the first is 0.
std::vector<double> arrival_offsets(const ArrivalParams& params, size_t num_requests);

}  // namespace ondol::bench
