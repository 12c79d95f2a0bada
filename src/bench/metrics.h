// Serving metrics of one benchmark run, defined as vLLM's benchmark defines them (docs/bench.md):
// TTFT, TPOT, ITL, E2EL, throughput and goodput, from per-request timings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace ondol::bench {

// What one request measured. Times in seconds.
struct RequestOutput {
  bool success = false;
  std::string error;          // why it failed ("HTTP 503: ..."); empty on success
  double start_s = 0;         // when it was sent, since the benchmark began
  double ttft_s = 0;          // first content chunk, since start_s
  double latency_s = 0;       // end of the response, since start_s (E2EL)
  std::vector<double> itl_s;  // gaps between successive content chunks
  int64_t prompt_tokens = 0;  // usage.prompt_tokens, else the dataset's estimate
  int64_t output_tokens = 0;  // usage.completion_tokens, else the number of content chunks
  std::string generated_text;
};

// --goodput: a request is good when it meets every SLO that is set.
struct SloConfig {
  std::optional<double> ttft_ms;
  std::optional<double> tpot_ms;
  std::optional<double> e2el_ms;
  bool any() const { return ttft_ms || tpot_ms || e2el_ms; }
};

// "ttft:200", "tpot:50", "e2el:1000" (vLLM's syntax); several per argument, space-separated too.
Result<SloConfig> parse_goodput(const std::vector<std::string>& args);

// "50,90,99" -> {50, 90, 99}; each in [0, 100].
Result<std::vector<double>> parse_percentiles(const std::string& text);

// "ttft,tpot,itl" -> validated names among ttft, tpot, itl, e2el.
Result<std::vector<std::string>> parse_percentile_metrics(const std::string& text);

struct MetricSummary {
  double mean_ms = 0;
  double median_ms = 0;
  double std_ms = 0;
  std::vector<std::pair<double, double>> percentiles_ms;  // (p, value)
};

// Requests ended and output tokens received in one second of the run.
struct ThroughputPoint {
  double t_s = 0;  // start of the second
  double requests_per_s = 0;
  double output_tokens_per_s = 0;
};

struct BenchmarkMetrics {
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t total_input = 0;
  int64_t total_output = 0;
  double duration_s = 0;
  double request_throughput = 0;
  double request_goodput = 0;
  double output_throughput = 0;
  double total_token_throughput = 0;
  MetricSummary ttft, tpot, itl, e2el;
  std::vector<ThroughputPoint> throughput_over_time;
  std::vector<std::pair<std::string, int64_t>> error_counts;  // most frequent first
};

BenchmarkMetrics compute_metrics(const std::vector<RequestOutput>& outputs, double duration_s,
                                 const SloConfig& slo, const std::vector<double>& percentiles);

// Per-second buckets over [0, duration): requests counted when they end, a request's output
// tokens spread evenly over its content chunks.
std::vector<ThroughputPoint> throughput_over_time(const std::vector<RequestOutput>& outputs,
                                                  double duration_s);

// "p" as vLLM writes it in keys and labels: 99 -> "99", 99.9 -> "99.9".
std::string percentile_word(double p);

}  // namespace ondol::bench
