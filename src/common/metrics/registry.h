// The metrics registry: counters, gauges and histograms with labels, rendered in the Prometheus
// text exposition format (version 0.0.4). No C++ Prometheus client is packaged for Debian 12, so
// this is ours.
//
// Families are declared once per component at startup; a labelled series is resolved once
// (`family.with({...})`, takes a lock) and the returned pointer is kept and updated lock-free on
// the hot path. Series live as long as the registry; pointers stay valid.
//
// Names are the exact wire names: a counter is declared as `http_requests_total`,
// `litellm_proxy_total_requests_metric_total` or `vllm:prompt_tokens_total`. Label values must be
// bounded (model names from config, status codes, a fixed set of reasons): never raw user input.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ondol::metrics {

class Counter {
 public:
  void inc(double v = 1.0);
  double value() const;

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v);
  void inc(double v = 1.0);
  void dec(double v = 1.0);
  double value() const;

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `upper_bounds` are finite and strictly ascending, and must outlive the histogram (the family
  // owns them); the +Inf bucket is implicit.
  explicit Histogram(const std::vector<double>* upper_bounds);
  // A value lands in the first bucket whose bound is >= v (`le` is inclusive); NaN lands in +Inf,
  // as in the Python client.
  void observe(double v);
  // Cumulative count for bucket i (upper bound upper_bounds[i]); i == size() is +Inf.
  uint64_t cumulative_count(size_t i) const;
  // The +Inf cumulative count: derived from the buckets so that `_count` always equals the
  // `le="+Inf"` sample, even while observations race with a scrape.
  uint64_t count() const;
  double sum() const;

 private:
  template <typename Series>
  friend class Family;  // renders all buckets in one pass

  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // non-cumulative, bounds_->size() + 1
  std::atomic<double> sum_{0.0};
};

enum class Type { Counter, Gauge, Histogram };

// A family: one metric name, its help text and its label names; series keyed by label values.
template <typename Series>
class Family {
 public:
  // Returns the series for these label values (count must equal the label names, else abort),
  // creating it on first use. Thread-safe; call once and keep the pointer.
  Series* with(std::initializer_list<std::string_view> label_values);
  Series* with(const std::vector<std::string>& label_values);

  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds);
  Series* get_or_create(std::vector<std::string> label_values);
  // Appends HELP, TYPE and every series' samples; takes this family's lock.
  void append_exposition(std::string& out) const;

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;             // histograms only, finite, ascending
  std::vector<std::string> bound_labels_;  // format_bound(bounds_[i]), then "+Inf"
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Series>> series_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry {
 public:
  // Declaring the same name twice returns the existing family; a different type, label set or
  // bucket list, an invalid name, or unordered buckets abort with a message (a programming
  // error, found at startup). An unlabelled family exposes its single series, at 0, from the
  // start; get it with `with({})`.
  CounterFamily& counter(std::string name, std::string help, std::vector<std::string> labels = {});
  GaugeFamily& gauge(std::string name, std::string help, std::vector<std::string> labels = {});
  HistogramFamily& histogram(std::string name, std::string help, std::vector<std::string> labels,
                             std::vector<double> upper_bounds);

  // A collector appends complete exposition text (HELP/TYPE and samples) at render time, for
  // values read on demand such as process_* figures.
  void add_collector(std::function<void(std::string& out)> collector);

  // The whole exposition, families in declaration order, series sorted by label values, then
  // the collectors' text in the order they were added. Collectors run under the registry's lock
  // and must not call back into it.
  std::string render() const;

 private:
  using FamilyRef = std::variant<CounterFamily*, GaugeFamily*, HistogramFamily*>;

  template <typename Series>
  Family<Series>& declare(std::deque<std::unique_ptr<Family<Series>>>& store, std::string name,
                          std::string help, std::vector<std::string> labels,
                          std::vector<double> bounds);

  mutable std::mutex mu_;
  std::vector<FamilyRef> order_;  // declaration order; lookups by name scan it (startup only)
  // Families are heap-allocated (their constructor is private to Registry) and never move, so
  // references handed out stay valid for the registry's lifetime.
  std::deque<std::unique_ptr<CounterFamily>> counters_;
  std::deque<std::unique_ptr<GaugeFamily>> gauges_;
  std::deque<std::unique_ptr<HistogramFamily>> histograms_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

// Renders a bucket bound as Prometheus clients do, so `le` strings match other exporters exactly:
// integers keep one decimal ("1.0", "10.0"), others use the shortest round-trip form ("0.005",
// "2.5"), and +Inf is "+Inf". Precisely: the Python client's floatToGoString (which vLLM and
// LiteLLM expose), i.e. Python's repr() of the float, with positive values of 7 or more integer
// digits rewritten as Go would ("1e+06", "1.5e+06"; the client writes "1e+010" from 10 digits on).
std::string format_bound(double bound);

// Appends process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds, read from /proc/self.
void collect_process_metrics(std::string& out);

}  // namespace ondol::metrics
