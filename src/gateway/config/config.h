// The gateway configuration: a LiteLLM-compatible YAML superset, parsed and validated once into
// these typed structs. Hot paths never see YAML; a reload builds a new GatewayConfig and swaps an
// immutable snapshot.
//
// Accepted YAML (all keys optional unless marked required):
//   model_list:                       (required, non-empty)
//     - model_name: NAME              (required) public name clients send as "model"
//       litellm_params:               (required)
//         model: PROVIDER/UPSTREAM    (required) openai/, hosted_vllm/, mock/ ... prefix
//         api_base, api_key, timeout, stream_timeout, rpm, tpm, weight, max_parallel_requests,
//         order, ssl_verify (bool), ssl_ca_file (path),
//         mock_response_latency_ms, mock_chunk_delay_ms, mock_tokens_per_chunk,
//         mock_output_tokens          (mock provider only)
//       model_info: { id, input_cost_per_token, output_cost_per_token, ... }
//   router_settings: routing_strategy, num_retries, allowed_fails, cooldown_time, fallbacks,
//                    timeout, ... (redis_* accepted, unused here)
//   litellm_settings: num_retries, request_timeout, callbacks, drop_params, ...
//   general_settings: master_key, public_routes, ...
// Any string value "os.environ/NAME" is replaced by the environment variable NAME (missing: error).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/memory_size.h"
#include "common/result.h"

namespace ondol::gateway {

enum class RoutingStrategy { SimpleShuffle, LeastBusy, LatencyBased };

const char* to_string(RoutingStrategy s);

// How a deployment is reached. Mock answers in-process, like an OpenAI server, for tests and
// benchmarks; the HTTP kinds all speak the OpenAI wire protocol.
// `local/PATH.gguf` serves a model in this process with ondol's engine.
enum class ProviderKind { OpenAICompatible, Mock, Local };

struct MockParams {
  double response_latency_ms = 0;  // before the first byte
  double chunk_delay_ms = 0;       // between stream chunks
  int tokens_per_chunk = 1;
  int output_tokens = 16;          // default completion length when max_tokens is absent
};

// Engine settings of a `local/` deployment (litellm_params keys of the same names). 0: the
// engine's default.
struct LocalEngineParams {
  int num_threads = 0;
  int max_model_len = 0;
  int max_num_seqs = 0;
  int max_num_batched_tokens = 0;
  int max_num_queued_requests = 0;
  MemorySize kv_cache_memory;  // bytes or a share of available memory; empty: the default
  int block_size = 0;
  bool enable_prefix_caching = true;
};

struct DeploymentConfig {
  std::string model_name;      // public group name
  std::string model;           // as written: "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct"
  std::string provider;        // "hosted_vllm", "openai", "mock", ... (prefix before the first /)
  ProviderKind kind = ProviderKind::OpenAICompatible;
  std::string upstream_model;  // prefix stripped: what goes upstream as "model"
  std::string api_base;        // "http://127.0.0.1:8001/v1"; empty for mock
  std::string api_key;         // secret: never logged, never printed by `check`
  double timeout_s = 0;        // 0: use litellm_settings.request_timeout
  double stream_timeout_s = 0; // 0: use timeout_s; bounds the wait for the first byte of a stream
  std::optional<int> rpm;
  std::optional<int> tpm;
  int weight = 1;              // simple-shuffle weight (canary split)
  std::optional<int> max_parallel_requests;
  int order = 0;               // lower first; 0 means unset
  bool ssl_verify = true;
  std::string ssl_ca_file;     // extra CA bundle for this upstream
  MockParams mock;
  LocalEngineParams local;     // local provider only; upstream_model is the GGUF path
  std::string id;              // model_info.id, or a stable id derived from the entry
  double input_cost_per_token = 0;
  double output_cost_per_token = 0;
  int line = 0;                // 1-based line of this entry in the file, for messages
};

struct Fallback {
  std::string model_name;
  std::vector<std::string> fallbacks;  // tried in order after the primary group is exhausted
};

struct RouterSettings {
  RoutingStrategy routing_strategy = RoutingStrategy::SimpleShuffle;
  int num_retries = 0;          // extra attempts after the first, across deployments
  int allowed_fails = 3;        // failures within 60 s before a deployment cools down
  double cooldown_time_s = 5;   // how long a cooled-down deployment is skipped
  std::vector<Fallback> fallbacks;
};

struct GatewayConfig {
  std::vector<DeploymentConfig> deployments;  // in file order
  RouterSettings router;
  double request_timeout_s = 600;
  bool drop_params = false;
  std::vector<std::string> callbacks;         // e.g. {"prometheus"}
  std::string master_key;                     // empty: no auth
  std::vector<std::string> public_routes;     // paths that skip auth even with a master key
  std::vector<std::string> warnings;          // "config.yaml:12: unknown key 'foo' ignored"
  std::string source;                         // file path (or "<string>")

  // Distinct model_name values in first-appearance order.
  std::vector<std::string> model_names() const;
};

// Parses and validates. An error message names the file and line:
// "config.yaml:7: litellm_params.timeout must be a number, got 'abc'".
Result<GatewayConfig> parse_config(const std::string& yaml_text, const std::string& source_name);
Result<GatewayConfig> load_config_file(const std::string& path);

// A human-readable table of the resolved routing: per model name its deployments (provider,
// upstream model, api_base, weight, timeouts, order), the strategy, retries and fallbacks.
// Secrets are shown as "***".
std::string format_routing_table(const GatewayConfig& config);

}  // namespace ondol::gateway
