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
//                    timeout, redis_host, redis_port, redis_password, redis_db, redis_url,
//                    rate_limit_fail_mode (open|closed), redis_timeout, ...
//   litellm_settings: num_retries, request_timeout, callbacks, drop_params, cache,
//                     cache_params: {type, ttl, mode, max_size, namespace, host, port, ...}, ...
//   general_settings: master_key, public_routes, database_url, database_path,
//                     spend_log_spool_dir, user_api_key_cache_ttl, disable_spend_logs,
//                     tiers: {NAME: {rpm, tpm, tpd, max_parallel_requests}},
//                     global_max_parallel_requests, max_queue_size, queue_timeout, ...
// Any string value "os.environ/NAME" is replaced by the environment variable NAME (missing: error).
#pragma once

#include <map>
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
  std::string kv_cache_dtype;  // "auto", "float16", "float32", "int8"; empty: the default
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

// general_settings.tiers.NAME: limits shared by every key, user or team of that tier.
struct TierConfig {
  std::optional<int64_t> rpm;  // requests per minute
  std::optional<int64_t> tpm;  // tokens per minute
  std::optional<int64_t> tpd;  // tokens per day
  std::optional<int64_t> max_parallel_requests;
};

// Keys, users, teams and the spend log (docs/tenants.md). Used when a master key is set.
struct TenancyConfig {
  std::string database_url;       // general_settings.database_url: postgresql://...; empty: SQLite
  std::string database_path;      // general_settings.database_path: the SQLite file
  std::string spend_spool_dir;    // general_settings.spend_log_spool_dir
  double key_cache_ttl_s = 5;     // general_settings.user_api_key_cache_ttl
  bool disable_spend_logs = false;
  std::map<std::string, TierConfig, std::less<>> tiers;
};

// Shared state for rate limits and the response cache (docs/limits.md, docs/gateway.md):
// router_settings.redis_host / redis_port / redis_password / redis_db, or redis_url.
struct RedisSettings {
  std::string url;       // redis_url; wins over the fields below when set
  std::string host;      // redis_host; empty (and no url): no Redis, counters in process
  int port = 6379;       // redis_port
  std::string password;  // redis_password: a secret, never logged
  int db = 0;            // redis_db
  bool configured() const { return !url.empty() || !host.empty(); }
};

// Rate limits and admission control (docs/limits.md).
struct LimitsConfig {
  RedisSettings redis;                   // router_settings.redis_*
  bool fail_closed = false;              // router_settings.rate_limit_fail_mode: open | closed
  double redis_timeout_s = 0.1;          // router_settings.redis_timeout: per Redis call
  int global_max_parallel_requests = 0;  // general_settings.global_max_parallel_requests; 0: none
  int max_queue = 100;                   // general_settings.max_queue_size: waiters per limiter
  double queue_timeout_s = 30;           // general_settings.queue_timeout: longest wait for a slot
  int64_t default_completion_tokens = 256;  // estimate when a request gives no max_tokens
};

// The exact-match response cache: litellm_settings.cache and cache_params.
struct CacheConfig {
  bool enabled = false;          // litellm_settings.cache
  bool redis = false;            // cache_params.type: local (default) | redis
  double ttl_s = 600;            // cache_params.ttl
  bool default_off = false;      // cache_params.mode: default_on | default_off (opt-in per request)
  int64_t max_entries = 10000;   // cache_params.max_size (local): least recently used go first
  std::string namespace_;        // cache_params.namespace: prefix of Redis keys
  RedisSettings redis_settings;  // cache_params.host / port / password / url; else router_settings
};

struct GatewayConfig {
  std::vector<DeploymentConfig> deployments;  // in file order
  RouterSettings router;
  double request_timeout_s = 600;
  bool drop_params = false;
  std::vector<std::string> callbacks;         // e.g. {"prometheus"}
  std::string master_key;                     // empty: no auth
  std::vector<std::string> public_routes;     // paths that skip auth even with a master key
  TenancyConfig tenancy;
  LimitsConfig limits;
  CacheConfig cache;
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
