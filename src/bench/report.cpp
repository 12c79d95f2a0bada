#include "bench/report.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <ctime>

namespace ondol::bench {

namespace {

constexpr int kTableWidth = 50;
constexpr size_t kErrorReasonsShown = 5;

std::string rule(std::string_view title, char fill) {
  std::string s(title);
  if (s.size() >= kTableWidth) return s + "\n";
  size_t left = (kTableWidth - s.size()) / 2;  // Python's '^' puts the extra fill on the right
  return std::string(left, fill) + s + std::string(kTableWidth - s.size() - left, fill) + "\n";
}

std::string row(std::string_view label, std::string_view value) {
  return fmt::format("{:<40} {:<10}\n", label, value);
}
std::string row(std::string_view label, int64_t value) {
  return row(label, std::to_string(value));
}
std::string row(std::string_view label, double value) {
  return row(label, fmt::format("{:.2f}", value));
}

struct MetricName {
  const char* key;
  const char* label;
  const char* header;
};
constexpr MetricName kMetricNames[] = {
    {"ttft", "TTFT", "Time to First Token"},
    {"tpot", "TPOT", "Time per Output Token (excl. 1st token)"},
    {"itl", "ITL", "Inter-token Latency"},
    {"e2el", "E2EL", "End-to-end Latency"},
};

const MetricSummary& summary_of(const BenchmarkMetrics& m, std::string_view key) {
  if (key == "ttft") return m.ttft;
  if (key == "tpot") return m.tpot;
  if (key == "itl") return m.itl;
  return m.e2el;
}

bool selected(const RunInfo& info, std::string_view key) {
  return std::find(info.percentile_metrics.begin(), info.percentile_metrics.end(), key) !=
         info.percentile_metrics.end();
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_key_double(Writer& w, const std::string& key, double v) {
  w.Key(key.c_str());
  w.Double(std::isfinite(v) ? v : 0.0);
}

}  // namespace

std::string format_result_table(const RunInfo& info, const BenchmarkMetrics& m) {
  std::string out = rule(" Serving Benchmark Result ", '=');
  out += row("Successful requests:", m.completed);
  out += row("Failed requests:", m.failed);
  size_t shown = 0;
  for (const auto& [reason, count] : m.error_counts) {
    if (shown++ == kErrorReasonsShown) {
      out += fmt::format("  ... {} more failure reasons in the result JSON\n",
                         m.error_counts.size() - kErrorReasonsShown);
      break;
    }
    std::string text = reason.size() > 70 ? reason.substr(0, 67) + "..." : reason;
    out += fmt::format("  {:>6} x {}\n", count, text);
  }
  if (info.max_concurrency)
    out += row("Maximum request concurrency:", int64_t{*info.max_concurrency});
  if (std::isfinite(info.request_rate))
    out += row("Request rate configured (RPS):", info.request_rate);
  out += row("Benchmark duration (s):", m.duration_s);
  out += row("Total input tokens:", m.total_input);
  out += row("Total generated tokens:", m.total_output);
  out += row("Request throughput (req/s):", m.request_throughput);
  if (info.goodput) out += row("Request goodput (req/s):", m.request_goodput);
  out += row("Output token throughput (tok/s):", m.output_throughput);
  out += row("Total Token throughput (tok/s):", m.total_token_throughput);
  for (const auto& name : kMetricNames) {
    if (!selected(info, name.key)) continue;
    const MetricSummary& s = summary_of(m, name.key);
    out += rule(name.header, '-');
    out += row(fmt::format("Mean {} (ms):", name.label), s.mean_ms);
    out += row(fmt::format("Median {} (ms):", name.label), s.median_ms);
    for (const auto& [p, v] : s.percentiles_ms)
      out += row(fmt::format("P{} {} (ms):", percentile_word(p), name.label), v);
  }
  out += std::string(kTableWidth, '=') + "\n";
  return out;
}

std::string result_json(const RunInfo& info, const BenchmarkMetrics& m,
                        const std::vector<RequestOutput>& outputs) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("date");
  write_string(w, info.date);
  w.Key("backend");
  write_string(w, info.backend);
  w.Key("model_id");
  write_string(w, info.model_id);
  w.Key("tokenizer_id");
  write_string(w, info.tokenizer_id);
  w.Key("num_prompts");
  w.Int64(info.num_prompts);
  w.Key("request_rate");
  if (std::isfinite(info.request_rate))
    w.Double(info.request_rate);
  else
    w.String("inf");
  w.Key("burstiness");
  w.Double(info.burstiness);
  w.Key("max_concurrency");
  if (info.max_concurrency)
    w.Int(*info.max_concurrency);
  else
    w.Null();
  write_key_double(w, "duration", m.duration_s);
  w.Key("completed");
  w.Int64(m.completed);
  w.Key("failed");
  w.Int64(m.failed);
  w.Key("total_input_tokens");
  w.Int64(m.total_input);
  w.Key("total_output_tokens");
  w.Int64(m.total_output);
  write_key_double(w, "request_throughput", m.request_throughput);
  write_key_double(w, "request_goodput", m.request_goodput);
  write_key_double(w, "output_throughput", m.output_throughput);
  write_key_double(w, "total_token_throughput", m.total_token_throughput);
  for (const auto& name : kMetricNames) {
    if (!selected(info, name.key)) continue;
    const MetricSummary& s = summary_of(m, name.key);
    std::string key = name.key;
    write_key_double(w, "mean_" + key + "_ms", s.mean_ms);
    write_key_double(w, "median_" + key + "_ms", s.median_ms);
    write_key_double(w, "std_" + key + "_ms", s.std_ms);
    for (const auto& [p, v] : s.percentiles_ms)
      write_key_double(w, "p" + percentile_word(p) + "_" + key + "_ms", v);
  }
  w.Key("input_lens");
  w.StartArray();
  for (const auto& o : outputs) w.Int64(o.prompt_tokens);
  w.EndArray();
  w.Key("output_lens");
  w.StartArray();
  for (const auto& o : outputs) w.Int64(o.success ? o.output_tokens : 0);
  w.EndArray();
  w.Key("ttfts");
  w.StartArray();
  for (const auto& o : outputs) w.Double(o.success ? o.ttft_s : 0.0);
  w.EndArray();
  w.Key("itls");
  w.StartArray();
  for (const auto& o : outputs) {
    w.StartArray();
    for (double v : o.itl_s) w.Double(v);
    w.EndArray();
  }
  w.EndArray();
  w.Key("generated_texts");
  w.StartArray();
  for (const auto& o : outputs) write_string(w, o.generated_text);
  w.EndArray();
  w.Key("errors");
  w.StartArray();
  for (const auto& o : outputs) write_string(w, o.error);
  w.EndArray();
  w.Key("throughput_over_time");
  w.StartArray();
  for (const auto& p : m.throughput_over_time) {
    w.StartObject();
    write_key_double(w, "t_s", p.t_s);
    write_key_double(w, "requests_per_s", p.requests_per_s);
    write_key_double(w, "output_tokens_per_s", p.output_tokens_per_s);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string default_result_filename(const RunInfo& info) {
  std::string model = info.model_id.substr(info.model_id.find_last_of('/') + 1);
  std::string concurrency =
      info.max_concurrency ? fmt::format("-concurrency{}", *info.max_concurrency) : "";
  return fmt::format("{}-{}qps{}-{}-{}.json", info.backend, python_float(info.request_rate),
                     concurrency, model, info.date);
}

std::string python_float(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::floor(v) && std::fabs(v) < 1e16) return fmt::format("{:.1f}", v);
  return fmt::format("{}", v);
}

std::string current_date_string() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &local);
  return buf;
}

}  // namespace ondol::bench
