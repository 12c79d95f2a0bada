// Summary statistics with the conventions of vLLM's benchmark (numpy's defaults), so that figures
// from `ondol bench` and `vllm bench serve` can be compared line by line.
#pragma once

#include <span>
#include <vector>

namespace ondol::bench {

// numpy.percentile(values, p) with its default "linear" method: the value at rank
// p/100 * (n - 1), interpolated between neighbours. `sorted` must be ascending; 0 when empty
// (vLLM passes `values or 0`).
double percentile_sorted(std::span<const double> sorted, double p);

double mean(std::span<const double> values);            // 0 when empty
double population_std(std::span<const double> values);  // numpy.std (ddof = 0)

}  // namespace ondol::bench
