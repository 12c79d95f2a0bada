// --plot FILE.svg: one self-contained SVG (no scripts, no external references) with the CDFs of
// TTFT, ITL and E2E latency (p50 and p99 marked) and throughput per second of the run, so that a
// person sees the tail and any stall at a glance.
#pragma once

#include <string>
#include <vector>

#include "bench/metrics.h"

namespace ondol::bench {

struct PlotInfo {
  std::string title;  // e.g. "openai stories260K, 1000 prompts at inf req/s"
};

std::string render_svg(const PlotInfo& info, const BenchmarkMetrics& m,
                       const std::vector<RequestOutput>& outputs);

}  // namespace ondol::bench
