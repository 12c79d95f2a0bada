#include "gateway/gateway_metrics.h"

#include <fmt/format.h>

#include <unordered_map>

#include "openai/error.h"

namespace ondol::gateway {
namespace {

// LiteLLM's latency buckets (seconds), so `le` values match its dashboards.
const std::vector<double> kLatencyBuckets = {
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0,
    180.0, 240.0, 300.0};
// The common HTTP exporter buckets for http_request_duration_seconds.
const std::vector<double> kHttpBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0};

// The user/key labels LiteLLM attaches; with only a master key they are empty but present, so
// "sum by (api_key_alias)" panels still return a series.
const std::vector<std::string> kUserLabels = {"end_user", "hashed_api_key", "api_key_alias",
                                              "team",     "team_alias",     "user"};

std::vector<std::string> with_user(std::vector<std::string> extra) {
  std::vector<std::string> out = kUserLabels;
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

const std::vector<std::string> kDeploymentLabels = {"litellm_model_name", "model_id", "api_base",
                                                    "api_provider", "requested_model"};

}  // namespace

GatewayMetrics::GatewayMetrics(metrics::Registry& r)
    : registry_(r),
      proxy_total_(r.counter("litellm_proxy_total_requests_metric_total",
                             "Total number of requests made to the proxy server",
                             with_user({"requested_model", "status_code"}))),
      proxy_failed_(r.counter("litellm_proxy_failed_requests_metric_total",
                              "Total number of failed responses from proxy",
                              with_user({"requested_model", "exception_status",
                                         "exception_class"}))),
      total_latency_(r.histogram("litellm_request_total_latency_metric",
                                 "Total latency (seconds) for a request to the proxy",
                                 with_user({"requested_model", "model"}), kLatencyBuckets)),
      deployment_success_(r.counter("litellm_deployment_success_responses_total",
                                    "Total number of successful LLM API calls via the gateway",
                                    kDeploymentLabels)),
      deployment_failure_(r.counter(
          "litellm_deployment_failure_responses_total",
          "Total number of failed LLM API calls to a specific deployment",
          {"litellm_model_name", "model_id", "api_base", "api_provider", "requested_model",
           "exception_status", "exception_class"})),
      deployment_total_(r.counter("litellm_deployment_total_requests_total",
                                  "Total number of LLM API calls to a deployment",
                                  kDeploymentLabels)),
      deployment_cooled_down_(r.counter(
          "litellm_deployment_cooled_down_total",
          "Number of times a deployment was cooled down after failing",
          {"litellm_model_name", "model_id", "api_base", "api_provider"})),
      deployment_state_(r.gauge("litellm_deployment_state",
                                "The state of the deployment: 0 = healthy, 1 = partial outage, "
                                "2 = complete outage",
                                {"litellm_model_name", "model_id", "api_base", "api_provider"})),
      remaining_requests_(r.gauge("litellm_remaining_requests",
                                  "Remaining requests for the model group, from the upstream's "
                                  "x-ratelimit-remaining-requests header",
                                  {"model_group", "api_provider", "api_base", "litellm_model_name",
                                   "hashed_api_key", "api_key_alias"})),
      remaining_tokens_(r.gauge("litellm_remaining_tokens",
                                "Remaining tokens for the model group, from the upstream's "
                                "x-ratelimit-remaining-tokens header",
                                {"model_group", "api_provider", "api_base", "litellm_model_name",
                                 "hashed_api_key", "api_key_alias"})),
      api_latency_(r.histogram("litellm_llm_api_latency_metric",
                               "Total latency (seconds) for a model's LLM API call",
                               with_user({"model", "requested_model"}), kLatencyBuckets)),
      ttft_(r.histogram("litellm_llm_api_time_to_first_token_metric",
                        "Time to first token for a model's LLM API call (streams)",
                        with_user({"model", "requested_model"}), kLatencyBuckets)),
      latency_per_output_token_(r.histogram(
          "litellm_deployment_latency_per_output_token",
          "Latency per output token (seconds) of a deployment",
          {"litellm_model_name", "model_id", "api_base", "api_provider", "requested_model"},
          kLatencyBuckets)),
      input_tokens_(r.counter("litellm_input_tokens_metric_total",
                              "Total number of input tokens from LLM requests",
                              with_user({"model", "requested_model"}))),
      output_tokens_(r.counter("litellm_output_tokens_metric_total",
                               "Total number of output tokens from LLM requests",
                               with_user({"model", "requested_model"}))),
      total_tokens_(r.counter("litellm_total_tokens_metric_total",
                              "Total number of input + output tokens from LLM requests",
                              with_user({"model", "requested_model"}))),
      http_requests_(r.counter("http_requests_total", "HTTP requests by handler, method and status",
                               {"handler", "method", "status"})),
      http_duration_(r.histogram("http_request_duration_seconds",
                                 "HTTP request duration in seconds, until the last byte",
                                 {"handler", "method"}, kHttpBuckets)) {
  retries = r.counter("ondol_gateway_retries_total", "Attempts beyond the first for a request")
                .with({});
  fallbacks = r.counter("ondol_gateway_fallbacks_total",
                        "Requests served or attempted by a fallback model group")
                  .with({});
  client_disconnects = r.counter("ondol_gateway_client_disconnects_total",
                                 "Requests whose client went away before the response ended")
                           .with({});
  in_flight = r.gauge("ondol_gateway_requests_in_flight", "Proxied requests being served").with({});
  auto& reloads = r.counter("ondol_config_reloads_total", "Configuration reloads by result",
                            {"result"});
  config_reloads_ok = reloads.with({"success"});
  config_reloads_failed = reloads.with({"failure"});
}

DeploymentSeries* GatewayMetrics::deployment(const DeploymentConfig& d) {
  std::lock_guard lock(mu_);
  auto& slot = deployments_[d.id + "|" + d.model_name];
  if (slot) return slot.get();
  slot = std::make_unique<DeploymentSeries>();
  auto& s = *slot;
  const std::string& model = d.upstream_model;
  s.success = deployment_success_.with({model, d.id, d.api_base, d.provider, d.model_name});
  s.total = deployment_total_.with({model, d.id, d.api_base, d.provider, d.model_name});
  s.cooled_down = deployment_cooled_down_.with({model, d.id, d.api_base, d.provider});
  s.state = deployment_state_.with({model, d.id, d.api_base, d.provider});
  s.remaining_requests = remaining_requests_.with({d.model_name, d.provider, d.api_base, model, "", ""});
  s.remaining_tokens = remaining_tokens_.with({d.model_name, d.provider, d.api_base, model, "", ""});
  s.api_latency = api_latency_.with({"", "", "", "", "", "", model, d.model_name});
  s.ttft = ttft_.with({"", "", "", "", "", "", model, d.model_name});
  s.latency_per_output_token =
      latency_per_output_token_.with({model, d.id, d.api_base, d.provider, d.model_name});
  s.input_tokens = input_tokens_.with({"", "", "", "", "", "", model, d.model_name});
  s.output_tokens = output_tokens_.with({"", "", "", "", "", "", model, d.model_name});
  s.total_tokens = total_tokens_.with({"", "", "", "", "", "", model, d.model_name});
  s.failure_labels = {model, d.id, d.api_base, d.provider, d.model_name};
  return slot.get();
}

namespace {

// Per-thread memo of resolved series, keyed by the family and the label values that vary.
// Family::with takes a lock and builds a vector of strings; on the request path that is most of
// the cost of counting, so each thread resolves a combination once. Label values are bounded
// (config names, status codes), so the memo stays small.
struct SeriesMemo {
  std::string key;  // reused buffer: lookups allocate nothing once warm
  std::unordered_map<std::string, void*> series;

  template <typename Series, typename Resolve>
  Series* get(const void* family, std::initializer_list<std::string_view> parts, Resolve resolve) {
    key.assign(reinterpret_cast<const char*>(&family), sizeof(family));
    for (auto p : parts) key.append(p).push_back('\x1f');
    auto it = series.find(key);
    if (it != series.end()) return static_cast<Series*>(it->second);
    Series* s = resolve();
    series.emplace(key, s);
    return s;
  }
};

thread_local SeriesMemo t_memo;

}  // namespace

void GatewayMetrics::request_done(std::string_view requested_model, int status,
                                  double latency_seconds) {
  char code_buf[8];
  auto code_len = fmt::format_to_n(code_buf, sizeof(code_buf), "{}", status).size;
  std::string_view code(code_buf, code_len);
  t_memo.get<metrics::Counter>(&proxy_total_, {requested_model, code}, [&] {
        return proxy_total_.with({"", "", "", "", "", "", requested_model, code});
      })->inc();
  t_memo.get<metrics::Histogram>(&total_latency_, {requested_model}, [&] {
        return total_latency_.with({"", "", "", "", "", "", requested_model, requested_model});
      })->observe(latency_seconds);
  if (status >= 400) {
    proxy_failed_
        .with({"", "", "", "", "", "", requested_model, code,
               openai::exception_class_for_status(status)})
        ->inc();
  }
}

void GatewayMetrics::deployment_failure(const DeploymentConfig& d, int status) {
  auto* s = deployment(d);
  std::vector<std::string> labels = s->failure_labels;
  labels.push_back(std::to_string(status));
  labels.emplace_back(openai::exception_class_for_status(status));
  deployment_failure_.with(labels)->inc();
}

void GatewayMetrics::http_request(std::string_view handler, std::string_view method, int status,
                                  double seconds) {
  char code_buf[8];
  auto code_len = fmt::format_to_n(code_buf, sizeof(code_buf), "{}", status).size;
  std::string_view code(code_buf, code_len);
  t_memo.get<metrics::Counter>(&http_requests_, {handler, method, code}, [&] {
        return http_requests_.with({handler, method, code});
      })->inc();
  t_memo.get<metrics::Histogram>(&http_duration_, {handler, method}, [&] {
        return http_duration_.with({handler, method});
      })->observe(seconds);
}

}  // namespace ondol::gateway
