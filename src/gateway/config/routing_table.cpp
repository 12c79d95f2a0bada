// format_routing_table: what `ondol check` prints. Secrets (api_key, master_key, passwords in
// api_base) are never printed, only whether they are set.
#include "gateway/config/config.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace ondol::gateway {
namespace {

constexpr std::string_view kHidden = "***";
constexpr std::string_view kUnset = "-";
constexpr std::string_view kColumnGap = "  ";
constexpr double kTokensPerMillion = 1e6;  // prices are shown per million tokens

// Left-aligned columns sized to their widest cell.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  void render(std::string_view indent, std::string* out) const {
    std::vector<size_t> widths(rows_.front().size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
        widths[i] = std::max(widths[i], row[i].size());
      }
    }
    for (const auto& row : rows_) {
      std::string line(indent);
      for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(widths[i] - row[i].size(), ' ').append(kColumnGap);
      }
      out->append(line).push_back('\n');
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "http://user:pass@host/v1" → "http://***@host/v1".
std::string redact_api_base(const std::string& api_base) {
  const size_t authority_begin = api_base.find("://");
  if (authority_begin == std::string::npos) return api_base;
  const size_t authority_end = std::min(api_base.find('/', authority_begin + 3), api_base.size());
  const size_t at = api_base.rfind('@', authority_end);
  if (at == std::string::npos || at < authority_begin) return api_base;
  return api_base.substr(0, authority_begin + 3) + std::string(kHidden) + api_base.substr(at);
}

std::string optional_int(const std::optional<int>& v) {
  return v ? std::to_string(*v) : std::string(kUnset);
}

std::string seconds(double s) {
  return fmt::format("{:g}s", s);
}

std::string price_per_million(double per_token) {
  return per_token == 0 ? std::string(kUnset) : fmt::format("{:g}", per_token * kTokensPerMillion);
}

void append_settings(const GatewayConfig& config, std::string* out) {
  const RouterSettings& r = config.router;
  fmt::format_to(std::back_inserter(*out), "config: {}\n", config.source);
  fmt::format_to(std::back_inserter(*out),
                 "routing: {}, num_retries {}, allowed_fails {}, cooldown_time {}, "
                 "request_timeout {}\n",
                 to_string(r.routing_strategy), r.num_retries, r.allowed_fails,
                 seconds(r.cooldown_time_s), seconds(config.request_timeout_s));
  if (config.master_key.empty()) {
    out->append("auth: none (no master_key)\n");
  } else {
    fmt::format_to(std::back_inserter(*out), "auth: master_key {}, public routes: {}\n", kHidden,
                   config.public_routes.empty()
                       ? std::string(kUnset)
                       : fmt::format("{}", fmt::join(config.public_routes, ", ")));
  }
  fmt::format_to(std::back_inserter(*out), "callbacks: {}, drop_params: {}\n",
                 config.callbacks.empty() ? std::string(kUnset)
                                          : fmt::format("{}", fmt::join(config.callbacks, ", ")),
                 config.drop_params);
}

void append_deployments(const GatewayConfig& config, std::string* out) {
  TextTable table({"MODEL", "ID", "PROVIDER", "UPSTREAM MODEL", "API BASE", "API KEY", "WEIGHT",
                   "ORDER", "TIMEOUT", "STREAM TIMEOUT", "RPM", "TPM", "MAX PARALLEL", "$/1M IN",
                   "$/1M OUT"});
  std::vector<const DeploymentConfig*> mocks;
  for (const std::string& name : config.model_names()) {
    int group_weight = 0;
    for (const DeploymentConfig& d : config.deployments) {
      if (d.model_name == name) group_weight += d.weight;
    }
    for (const DeploymentConfig& d : config.deployments) {
      if (d.model_name != name) continue;
      const std::string weight =
          group_weight > 0 ? fmt::format("{} ({:.0f}%)", d.weight, 100.0 * d.weight / group_weight)
                           : std::to_string(d.weight);
      table.add_row(
          {d.model_name, d.id, d.provider, d.upstream_model,
           d.kind == ProviderKind::Mock ? "(in-process mock)" : redact_api_base(d.api_base),
           d.api_key.empty() ? std::string(kUnset) : std::string(kHidden), weight,
           d.order == 0 ? std::string(kUnset) : std::to_string(d.order), seconds(d.timeout_s),
           seconds(d.stream_timeout_s), optional_int(d.rpm), optional_int(d.tpm),
           optional_int(d.max_parallel_requests), price_per_million(d.input_cost_per_token),
           price_per_million(d.output_cost_per_token)});
      if (d.kind == ProviderKind::Mock) mocks.push_back(&d);
    }
  }
  fmt::format_to(std::back_inserter(*out), "\ndeployments ({}):\n", config.deployments.size());
  table.render("  ", out);
  for (const DeploymentConfig* d : mocks) {
    fmt::format_to(std::back_inserter(*out),
                   "  mock {}: latency {:g} ms, chunk delay {:g} ms, {} tokens/chunk, "
                   "{} output tokens by default\n",
                   d->id, d->mock.response_latency_ms, d->mock.chunk_delay_ms,
                   d->mock.tokens_per_chunk, d->mock.output_tokens);
  }
  for (const DeploymentConfig& d : config.deployments) {
    if (!d.ssl_verify || !d.ssl_ca_file.empty()) {
      fmt::format_to(std::back_inserter(*out), "  tls {}: verify {}{}\n", d.id,
                     d.ssl_verify ? "on" : "OFF",
                     d.ssl_ca_file.empty() ? "" : fmt::format(", ca file {}", d.ssl_ca_file));
    }
  }
}

}  // namespace

std::string format_routing_table(const GatewayConfig& config) {
  std::string out;
  append_settings(config, &out);
  append_deployments(config, &out);
  out.append("\nfallbacks:");
  if (config.router.fallbacks.empty()) out.append(" none");
  out.push_back('\n');
  for (const Fallback& f : config.router.fallbacks) {
    fmt::format_to(std::back_inserter(out), "  {} -> {}\n", f.model_name,
                   fmt::join(f.fallbacks, " -> "));
  }
  return out;
}

}  // namespace ondol::gateway
