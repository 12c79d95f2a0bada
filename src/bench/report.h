// What a benchmark run prints and saves: vLLM's result table and result JSON (same layout and
// key names), so scripts that read `vllm bench serve` output read ondol's.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/metrics.h"

namespace ondol::bench {

struct RunInfo {
  std::string date;  // "20250102-030405" (local time, as vLLM)
  std::string backend;
  std::string model_id;
  std::string tokenizer_id;
  int64_t num_prompts = 0;
  double request_rate = 0;  // infinity: all at once
  double burstiness = 1.0;
  std::optional<int> max_concurrency;
  std::vector<std::string> percentile_metrics;  // among ttft, tpot, itl, e2el
  bool goodput = false;                         // --goodput given
};

// The "============ Serving Benchmark Result ============" table.
std::string format_result_table(const RunInfo& info, const BenchmarkMetrics& m);

// The --save-result JSON (one line).
std::string result_json(const RunInfo& info, const BenchmarkMetrics& m,
                        const std::vector<RequestOutput>& outputs);

// vLLM's default file name: "{backend}-{rate}qps[-concurrency{N}]-{model}-{date}.json".
std::string default_result_filename(const RunInfo& info);

// Python's str() of a float, as vLLM prints it: "10.0", "0.5", "inf".
std::string python_float(double v);

// "20250102-030405" for now, local time.
std::string current_date_string();

}  // namespace ondol::bench
