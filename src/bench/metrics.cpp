#include "bench/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>

#include "bench/stats.h"

namespace ondol::bench {

namespace {

MetricSummary summarize(std::vector<double> values_s, const std::vector<double>& percentiles) {
  std::sort(values_s.begin(), values_s.end());
  MetricSummary s;
  s.mean_ms = mean(values_s) * 1000;
  s.std_ms = population_std(values_s) * 1000;
  s.median_ms = percentile_sorted(values_s, 50) * 1000;
  for (double p : percentiles)
    s.percentiles_ms.emplace_back(p, percentile_sorted(values_s, p) * 1000);
  return s;
}

std::vector<std::string> split(const std::string& text, const char* separators) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (std::string_view(separators).find(c) != std::string_view::npos) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

Result<SloConfig> parse_goodput(const std::vector<std::string>& args) {
  SloConfig slo;
  for (const auto& arg : args) {
    for (const auto& item : split(arg, " ")) {
      auto colon = item.find(':');
      std::string name = item.substr(0, colon);
      auto value = colon == std::string::npos ? std::nullopt : parse_number(item.substr(colon + 1));
      if (!value || *value < 0)
        return make_error(
            fmt::format("--goodput '{}': expected NAME:MILLISECONDS, e.g. ttft:200", item));
      if (name == "ttft")
        slo.ttft_ms = value;
      else if (name == "tpot")
        slo.tpot_ms = value;
      else if (name == "e2el")
        slo.e2el_ms = value;
      else
        return make_error(
            fmt::format("--goodput '{}': unknown metric '{}' (ttft, tpot or e2el)", item, name));
    }
  }
  return slo;
}

Result<std::vector<double>> parse_percentiles(const std::string& text) {
  std::vector<double> out;
  for (const auto& item : split(text, ", ")) {
    auto v = parse_number(item);
    if (!v || *v < 0 || *v > 100)
      return make_error(
          fmt::format("--metric-percentiles '{}': not a percentile in [0, 100]", item));
    out.push_back(*v);
  }
  return out;
}

Result<std::vector<std::string>> parse_percentile_metrics(const std::string& text) {
  std::vector<std::string> out = split(text, ", ");
  for (const auto& m : out) {
    if (m != "ttft" && m != "tpot" && m != "itl" && m != "e2el")
      return make_error(
          fmt::format("--percentile-metrics '{}': unknown metric (ttft, tpot, itl or e2el)", m));
  }
  return out;
}

std::string percentile_word(double p) {
  if (p == std::floor(p)) return fmt::format("{}", static_cast<int64_t>(p));
  return fmt::format("{}", p);
}

std::vector<ThroughputPoint> throughput_over_time(const std::vector<RequestOutput>& outputs,
                                                  double duration_s) {
  size_t num_seconds = static_cast<size_t>(std::max(1.0, std::ceil(duration_s)));
  std::vector<ThroughputPoint> points(num_seconds);
  for (size_t i = 0; i < num_seconds; ++i) points[i].t_s = static_cast<double>(i);
  auto bucket = [&](double t) {
    auto b = static_cast<int64_t>(std::floor(std::max(0.0, t)));
    return static_cast<size_t>(std::min<int64_t>(b, static_cast<int64_t>(num_seconds) - 1));
  };
  for (const auto& o : outputs) {
    if (!o.success) continue;
    points[bucket(o.start_s + o.latency_s)].requests_per_s += 1;
    size_t num_chunks = o.itl_s.size() + 1;
    double tokens_per_chunk =
        static_cast<double>(o.output_tokens) / static_cast<double>(num_chunks);
    double t = o.start_s + o.ttft_s;
    points[bucket(t)].output_tokens_per_s += tokens_per_chunk;
    for (double gap : o.itl_s) {
      t += gap;
      points[bucket(t)].output_tokens_per_s += tokens_per_chunk;
    }
  }
  // The last bucket may be a fraction of a second long: scale it to a rate.
  double last_len = duration_s - static_cast<double>(num_seconds - 1);
  if (last_len > 0 && last_len < 1) {
    points.back().requests_per_s /= last_len;
    points.back().output_tokens_per_s /= last_len;
  }
  return points;
}

BenchmarkMetrics compute_metrics(const std::vector<RequestOutput>& outputs, double duration_s,
                                 const SloConfig& slo, const std::vector<double>& percentiles) {
  BenchmarkMetrics m;
  m.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2els;
  int64_t good = 0;
  std::map<std::string, int64_t> errors;
  for (const auto& o : outputs) {
    if (!o.success) {
      ++m.failed;
      ++errors[o.error.empty() ? std::string("unknown error") : o.error];
      continue;
    }
    ++m.completed;
    m.total_input += o.prompt_tokens;
    m.total_output += o.output_tokens;
    double tpot = 0;  // requests of one token count as TPOT 0 for goodput, as in vLLM
    if (o.output_tokens > 1) {
      tpot = (o.latency_s - o.ttft_s) / static_cast<double>(o.output_tokens - 1);
      tpots.push_back(tpot);
    }
    itls.insert(itls.end(), o.itl_s.begin(), o.itl_s.end());
    ttfts.push_back(o.ttft_s);
    e2els.push_back(o.latency_s);
    bool is_good = (!slo.ttft_ms || o.ttft_s * 1000 <= *slo.ttft_ms) &&
                   (!slo.tpot_ms || tpot * 1000 <= *slo.tpot_ms) &&
                   (!slo.e2el_ms || o.latency_s * 1000 <= *slo.e2el_ms);
    if (is_good) ++good;
  }
  if (duration_s > 0) {
    m.request_throughput = static_cast<double>(m.completed) / duration_s;
    m.request_goodput = slo.any() ? static_cast<double>(good) / duration_s : 0;
    m.output_throughput = static_cast<double>(m.total_output) / duration_s;
    m.total_token_throughput = static_cast<double>(m.total_input + m.total_output) / duration_s;
  }
  m.ttft = summarize(std::move(ttfts), percentiles);
  m.tpot = summarize(std::move(tpots), percentiles);
  m.itl = summarize(std::move(itls), percentiles);
  m.e2el = summarize(std::move(e2els), percentiles);
  m.throughput_over_time = throughput_over_time(outputs, duration_s);
  m.error_counts.assign(errors.begin(), errors.end());
  std::stable_sort(m.error_counts.begin(), m.error_counts.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return m;
}

}  // namespace ondol::bench
