#include "engine/engine_metrics.h"

namespace ondol::engine {
namespace {

// vLLM V1's boundaries (vllm/v1/metrics/loggers.py), kept exact: dashboards select buckets by
// their `le` strings.
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                          0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0,
                                          20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kTokenLatencyBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                                  0.3,  0.4,   0.5,  0.75,  1.0, 2.5,  5.0,
                                                  7.5,  10.0,  20.0, 40.0,  80.0};
const std::vector<double> kRequestLatencyBuckets = {
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
// vLLM derives these from its CUDA-graph capture sizes; a CPU engine has none, so powers of two.
const std::vector<double> kIterationTokenBuckets = {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048,
                                                    4096, 8192, 16384};
const std::vector<std::string> kLabels = {"model_name", "engine"};
constexpr const char* kEngineIndex = "0";
constexpr double kMaxTokenBucket = 1'000'000;

}  // namespace

std::vector<double> buckets_1_2_5(double max_value) {
  std::vector<double> out;
  for (double scale = 1;; scale *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m * scale > max_value) return out;
      out.push_back(m * scale);
    }
  }
}

EngineMetrics::EngineMetrics(metrics::Registry& r, const std::string& model, int max_model_len,
                             int num_kv_blocks, int block_size, bool enable_prefix_caching,
                             const std::string& cache_dtype) {
  auto gauge = [&](const char* name, const char* help) {
    return r.gauge(name, help, kLabels).with({model, kEngineIndex});
  };
  auto counter = [&](const char* name, const char* help) {
    return r.counter(name, help, kLabels).with({model, kEngineIndex});
  };
  auto histogram = [&](const char* name, const char* help, const std::vector<double>& buckets) {
    return r.histogram(name, help, kLabels, buckets).with({model, kEngineIndex});
  };
  num_requests_running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.");
  num_requests_waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.");
  kv_cache_usage_perc = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.");
  prompt_tokens = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.");
  generation_tokens = counter("vllm:generation_tokens_total", "Number of generation tokens processed.");
  num_preemptions = counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.");
  prefix_cache_queries = counter(
      "vllm:prefix_cache_queries_total",
      "Prefix cache queries, in terms of number of queried tokens.");
  prefix_cache_hits = counter("vllm:prefix_cache_hits_total",
                              "Prefix cache hits, in terms of number of cached tokens.");
  auto& success = r.counter("vllm:request_success_total", "Count of successfully processed requests.",
                            {"model_name", "engine", "finished_reason"});
  success_stop = success.with({model, kEngineIndex, "stop"});
  success_length = success.with({model, kEngineIndex, "length"});
  success_abort = success.with({model, kEngineIndex, "abort"});
  time_to_first_token = histogram("vllm:time_to_first_token_seconds",
                                  "Histogram of time to first token in seconds.", kTtftBuckets);
  inter_token_latency = histogram("vllm:inter_token_latency_seconds",
                                  "Histogram of inter-token latency in seconds.", kTokenLatencyBuckets);
  request_time_per_output_token = histogram(
      "vllm:request_time_per_output_token_seconds",
      "Histogram of time_per_output_token_seconds per request.", kTokenLatencyBuckets);
  e2e_request_latency = histogram("vllm:e2e_request_latency_seconds",
                                  "Histogram of e2e request latency in seconds.", kRequestLatencyBuckets);
  request_queue_time = histogram("vllm:request_queue_time_seconds",
                                 "Histogram of time spent in WAITING phase for request.", kRequestLatencyBuckets);
  request_inference_time = histogram("vllm:request_inference_time_seconds",
                                     "Histogram of time spent in RUNNING phase for request.", kRequestLatencyBuckets);
  request_prefill_time = histogram("vllm:request_prefill_time_seconds",
                                   "Histogram of time spent in PREFILL phase for request.", kRequestLatencyBuckets);
  request_decode_time = histogram("vllm:request_decode_time_seconds",
                                  "Histogram of time spent in DECODE phase for request.", kRequestLatencyBuckets);
  // vLLM bounds these by max_model_len; a fixed bound keeps one family valid for every model a
  // process serves (the boundaries vLLM would emit are all included, with the same strings).
  (void)max_model_len;
  const std::vector<double> token_buckets = buckets_1_2_5(kMaxTokenBucket);
  request_prompt_tokens = histogram("vllm:request_prompt_tokens",
                                    "Number of prefill tokens processed.", token_buckets);
  request_generation_tokens = histogram("vllm:request_generation_tokens",
                                        "Number of generation tokens processed.", token_buckets);
  request_max_num_generation_tokens = histogram(
      "vllm:request_max_num_generation_tokens",
      "Histogram of maximum number of requested generation tokens.", token_buckets);
  request_params_max_tokens = histogram("vllm:request_params_max_tokens",
                                        "Histogram of the max_tokens request parameter.", token_buckets);
  iteration_tokens = histogram("vllm:iteration_tokens_total",
                               "Histogram of number of tokens per engine_step.", kIterationTokenBuckets);
  auto& info = r.gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                       {"block_size", "cache_dtype", "enable_prefix_caching", "num_gpu_blocks"});
  info.with({std::to_string(block_size), cache_dtype, enable_prefix_caching ? "True" : "False",
             std::to_string(num_kv_blocks)})
      ->set(1);
}

}  // namespace ondol::engine
