// The gateway's metrics, declared once. Names and labels are LiteLLM's, so its dashboards and
// alerts work unchanged; http_* follow the usual HTTP exporter names. Label values come from
// the config (model names, deployments) or small fixed sets (status codes, exception classes),
// never from raw client input: a request for an unknown model counts under requested_model="".
#pragma once

#include <string>
#include <string_view>

#include "common/metrics/registry.h"
#include "gateway/config/config.h"

namespace ondol::gateway {

// Per-deployment series, resolved when a route table is built.
struct DeploymentSeries {
  metrics::Counter* success = nullptr;        // litellm_deployment_success_responses_total
  metrics::Counter* total = nullptr;          // litellm_deployment_total_requests_total
  metrics::Counter* cooled_down = nullptr;    // litellm_deployment_cooled_down_total
  metrics::Gauge* state = nullptr;            // litellm_deployment_state: 0 ok, 1 partial, 2 down
  metrics::Gauge* remaining_requests = nullptr;
  metrics::Gauge* remaining_tokens = nullptr;
  metrics::Histogram* api_latency = nullptr;  // litellm_llm_api_latency_metric
  metrics::Histogram* ttft = nullptr;         // litellm_llm_api_time_to_first_token_metric
  metrics::Histogram* latency_per_output_token = nullptr;
  metrics::Counter* input_tokens = nullptr;
  metrics::Counter* output_tokens = nullptr;
  metrics::Counter* total_tokens = nullptr;
  std::vector<std::string> failure_labels;    // prefix of litellm_deployment_failure_responses
};

class GatewayMetrics {
 public:
  explicit GatewayMetrics(metrics::Registry& registry);

  // Series for a deployment (cached by id: reloads reuse them).
  DeploymentSeries* deployment(const DeploymentConfig& d);

  // One finished proxied request, as LiteLLM counts it at the proxy level.
  void request_done(std::string_view requested_model, int status, double latency_seconds);
  void deployment_failure(const DeploymentConfig& d, int status);
  void http_request(std::string_view handler, std::string_view method, int status,
                    double seconds);

  metrics::Counter* retries = nullptr;
  metrics::Counter* fallbacks = nullptr;
  metrics::Counter* client_disconnects = nullptr;
  metrics::Gauge* in_flight = nullptr;
  metrics::Counter* config_reloads_ok = nullptr;
  metrics::Counter* config_reloads_failed = nullptr;

 private:
  metrics::Registry& registry_;
  metrics::CounterFamily& proxy_total_;
  metrics::CounterFamily& proxy_failed_;
  metrics::HistogramFamily& total_latency_;
  metrics::CounterFamily& deployment_success_;
  metrics::CounterFamily& deployment_failure_;
  metrics::CounterFamily& deployment_total_;
  metrics::CounterFamily& deployment_cooled_down_;
  metrics::GaugeFamily& deployment_state_;
  metrics::GaugeFamily& remaining_requests_;
  metrics::GaugeFamily& remaining_tokens_;
  metrics::HistogramFamily& api_latency_;
  metrics::HistogramFamily& ttft_;
  metrics::HistogramFamily& latency_per_output_token_;
  metrics::CounterFamily& input_tokens_;
  metrics::CounterFamily& output_tokens_;
  metrics::CounterFamily& total_tokens_;
  metrics::CounterFamily& http_requests_;
  metrics::HistogramFamily& http_duration_;
  std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<DeploymentSeries>> deployments_;
};

}  // namespace ondol::gateway
