// The engine's metrics under vLLM's exact names, labels (model_name, engine) and bucket
// boundaries, so that dashboards and alerts written for vLLM work on ondol unchanged. Declared
// once per registry; each engine resolves its own series at start and updates them from its
// step thread with lock-free atomics.
#pragma once

#include <string>

#include "common/metrics/registry.h"

namespace ondol::engine {

struct EngineMetrics {
  // cache_dtype: the cache_config_info label ("float16", "float32", "int8").
  EngineMetrics(metrics::Registry& registry, const std::string& model_name, int max_model_len,
                int num_kv_blocks, int block_size, bool enable_prefix_caching,
                const std::string& cache_dtype);

  metrics::Gauge* num_requests_running;
  metrics::Gauge* num_requests_waiting;
  metrics::Gauge* kv_cache_usage_perc;  // 0..1
  metrics::Counter* prompt_tokens;
  metrics::Counter* generation_tokens;
  metrics::Counter* num_preemptions;
  metrics::Counter* prefix_cache_queries;  // tokens
  metrics::Counter* prefix_cache_hits;     // tokens
  metrics::Counter* success_stop;
  metrics::Counter* success_length;
  metrics::Counter* success_abort;
  metrics::Histogram* time_to_first_token;
  metrics::Histogram* inter_token_latency;
  metrics::Histogram* request_time_per_output_token;
  metrics::Histogram* e2e_request_latency;
  metrics::Histogram* request_queue_time;
  metrics::Histogram* request_inference_time;
  metrics::Histogram* request_prefill_time;
  metrics::Histogram* request_decode_time;
  metrics::Histogram* request_prompt_tokens;
  metrics::Histogram* request_generation_tokens;
  metrics::Histogram* request_max_num_generation_tokens;
  metrics::Histogram* request_params_max_tokens;
  metrics::Histogram* iteration_tokens;
};

// vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to `max_value`.
std::vector<double> buckets_1_2_5(double max_value);

}  // namespace ondol::engine
