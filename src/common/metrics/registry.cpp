#include "common/metrics/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <system_error>
#include <type_traits>

namespace ondol::metrics {
namespace {

// Integers below 2^53 are exact in a double and print as plain digits ("3", "1048576").
constexpr double kMaxExactInteger = 9007199254740992.0;
// Python's repr() switches to scientific notation outside 1e-4 <= |v| < 1e16; in its terms the
// decimal point position `decpt` (value = 0.DIGITS x 10^decpt) must satisfy -4 < decpt <= 16.
constexpr int kReprMinDecpt = -4;
constexpr int kReprMaxDecpt = 16;
// floatToGoString rewrites positive values whose repr has the '.' after more than this many
// characters (seven or more integer digits) in exponent form, as Go's strconv does.
constexpr size_t kGoMaxDotPosition = 6;
// Enough for any double in shortest scientific form ("-2.2250738585072014e-308").
constexpr size_t kDoubleCharsMax = 32;
// A first guess for the exposition size, so a typical scrape does not reallocate repeatedly.
constexpr size_t kRenderReserveBytes = 16 << 10;

// Declaration mistakes (a bad name, a clash, the wrong number of label values) are programming
// errors found at startup; they abort in every build type rather than render a broken exposition.
[[noreturn]] void invariant_failed(std::string_view what, std::string_view name) {
  std::fprintf(stderr, "metrics: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(name.size()), name.data());
  std::abort();
}

bool is_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Label names follow the metric-name grammar without ':'; names starting with "__" are reserved
// for Prometheus itself.
bool is_label_name(std::string_view s) {
  if (s.find(':') != std::string_view::npos || s.starts_with("__")) return false;
  return is_metric_name(s);
}

template <typename Series>
constexpr std::string_view type_name() {
  if constexpr (std::is_same_v<Series, Counter>)
    return "counter";
  else if constexpr (std::is_same_v<Series, Gauge>)
    return "gauge";
  else
    return "histogram";
}

void append_help_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\')
      out.append("\\\\");
    else if (c == '\n')
      out.append("\\n");
    else
      out.push_back(c);
  }
}

void append_label_value_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\')
      out.append("\\\\");
    else if (c == '"')
      out.append("\\\"");
    else if (c == '\n')
      out.append("\\n");
    else
      out.push_back(c);
  }
}

// A sample value: exact integers without decimals ("3"), other finite values in the shortest form
// that round-trips ("0.25", "1.5e-07"), and the infinities and NaN as Prometheus spells them.
void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("NaN");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "+Inf" : "-Inf");
  } else if (v == std::trunc(v) && std::fabs(v) < kMaxExactInteger) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<int64_t>(v));
  } else {
    char buf[kDoubleCharsMax];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, end);
  }
}

// `{a="x",b="y"` without the closing brace, so a histogram can add `,le="..."`; nothing when there
// are no labels.
void append_labels_open(std::string& out, const std::vector<std::string>& names,
                        const std::vector<std::string>& values) {
  for (size_t i = 0; i < names.size(); ++i) {
    out.push_back(i == 0 ? '{' : ',');
    out.append(names[i]).append("=\"");
    append_label_value_escaped(out, values[i]);
    out.push_back('"');
  }
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, double value) {
  out.append(name).append(suffix);
  append_labels_open(out, label_names, label_values);
  if (!label_names.empty()) out.push_back('}');
  out.push_back(' ');
  append_value(out, value);
  out.push_back('\n');
}

// Python's repr(float): the shortest digits that round-trip, fixed notation when
// -4 < decpt <= 16 (always with a '.', "1.0"), scientific otherwise with a signed exponent of at
// least two digits ("1e-05", "1.5e+16").
std::string python_repr(double v) {
  char buf[kDoubleCharsMax];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(end - buf));  // "-d.ddde+XX" or "de-XX"

  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  std::string_view exp_text = sci.substr(e_pos + 1);
  if (exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);

  int decpt = exponent + 1;
  int num_digits = static_cast<int>(digits.size());
  if (decpt > kReprMinDecpt && decpt <= kReprMaxDecpt) {
    if (decpt <= 0) {
      out.append("0.").append(static_cast<size_t>(-decpt), '0').append(digits);
    } else if (decpt >= num_digits) {
      out.append(digits).append(static_cast<size_t>(decpt - num_digits), '0').append(".0");
    } else {
      out.append(digits, 0, static_cast<size_t>(decpt)).push_back('.');
      out.append(digits, static_cast<size_t>(decpt));
    }
  } else {
    out.push_back(digits[0]);
    if (num_digits > 1) out.append(".").append(digits, 1);
    fmt::format_to(std::back_inserter(out), "e{}{:02}", exponent < 0 ? '-' : '+',
                   std::abs(exponent));
  }
  return out;
}

}  // namespace

// --- series ---------------------------------------------------------------------------------

void Counter::inc(double v) {
  assert(v >= 0 && "counters only go up");
  value_.fetch_add(v, std::memory_order_relaxed);
}
double Counter::value() const {
  return value_.load(std::memory_order_relaxed);
}

void Gauge::set(double v) {
  value_.store(v, std::memory_order_relaxed);
}
void Gauge::inc(double v) {
  value_.fetch_add(v, std::memory_order_relaxed);
}
void Gauge::dec(double v) {
  value_.fetch_sub(v, std::memory_order_relaxed);
}
double Gauge::value() const {
  return value_.load(std::memory_order_relaxed);
}

Histogram::Histogram(const std::vector<double>* upper_bounds)
    : bounds_(upper_bounds),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds->size() + 1)) {}

void Histogram::observe(double v) {
  size_t i = bounds_->size();  // +Inf, also where NaN goes
  if (!std::isnan(v)) {
    i = static_cast<size_t>(std::lower_bound(bounds_->begin(), bounds_->end(), v) -
                            bounds_->begin());
  }
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::cumulative_count(size_t i) const {
  assert(i <= bounds_->size());
  uint64_t total = 0;
  for (size_t b = 0; b <= i; ++b) total += buckets_[b].load(std::memory_order_relaxed);
  return total;
}

uint64_t Histogram::count() const {
  return cumulative_count(bounds_->size());
}

double Histogram::sum() const {
  return sum_.load(std::memory_order_relaxed);
}

// --- families -------------------------------------------------------------------------------

template <typename Series>
Family<Series>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                       std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {
  for (double b : bounds_) bound_labels_.push_back(format_bound(b));
  if constexpr (std::is_same_v<Series, Histogram>) bound_labels_.emplace_back("+Inf");
}

template <typename Series>
Series* Family<Series>::with(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> values;
  values.reserve(label_values.size());
  for (std::string_view v : label_values) values.emplace_back(v);
  return get_or_create(std::move(values));
}

template <typename Series>
Series* Family<Series>::with(const std::vector<std::string>& label_values) {
  return get_or_create(label_values);
}

template <typename Series>
Series* Family<Series>::get_or_create(std::vector<std::string> label_values) {
  if (label_values.size() != label_names_.size()) {
    invariant_failed("wrong number of label values for", name_);
  }
  std::lock_guard lock(mu_);
  auto it = series_.find(label_values);
  if (it != series_.end()) return it->second.get();
  std::unique_ptr<Series> series;
  if constexpr (std::is_same_v<Series, Histogram>)
    series = std::make_unique<Histogram>(&bounds_);
  else
    series = std::make_unique<Series>();
  Series* raw = series.get();
  series_.emplace(std::move(label_values), std::move(series));
  return raw;
}

template <typename Series>
void Family<Series>::append_exposition(std::string& out) const {
  out.append("# HELP ").append(name_).push_back(' ');
  append_help_escaped(out, help_);
  out.append("\n# TYPE ").append(name_).push_back(' ');
  out.append(type_name<Series>()).push_back('\n');

  std::lock_guard lock(mu_);
  for (const auto& [values, series] : series_) {
    if constexpr (std::is_same_v<Series, Histogram>) {
      // One pass over the buckets so that the cumulative counts, +Inf and _count agree.
      uint64_t cumulative = 0;
      for (size_t i = 0; i < bound_labels_.size(); ++i) {
        cumulative += series->buckets_[i].load(std::memory_order_relaxed);
        out.append(name_).append("_bucket");
        append_labels_open(out, label_names_, values);
        out.append(label_names_.empty() ? "{le=\"" : ",le=\"");
        out.append(bound_labels_[i]).append("\"} ");
        append_value(out, static_cast<double>(cumulative));
        out.push_back('\n');
      }
      append_sample(out, name_, "_sum", label_names_, values, series->sum());
      append_sample(out, name_, "_count", label_names_, values, static_cast<double>(cumulative));
    } else {
      append_sample(out, name_, "", label_names_, values, series->value());
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- registry -------------------------------------------------------------------------------

template <typename Series>
Family<Series>& Registry::declare(std::deque<std::unique_ptr<Family<Series>>>& store,
                                  std::string name, std::string help,
                                  std::vector<std::string> labels, std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  for (const FamilyRef& ref : order_) {
    bool same_name = std::visit([&](const auto* f) { return f->name() == name; }, ref);
    if (!same_name) continue;
    auto* const* existing = std::get_if<Family<Series>*>(&ref);
    if (existing == nullptr) invariant_failed("declared again with another type", name);
    if ((*existing)->label_names_ != labels) {
      invariant_failed("declared again with other labels", name);
    }
    if ((*existing)->bounds_ != bounds) invariant_failed("declared again with other buckets", name);
    return **existing;
  }

  if (!is_metric_name(name)) invariant_failed("invalid metric name", name);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!is_label_name(labels[i])) invariant_failed("invalid label name", labels[i]);
    if (std::is_same_v<Series, Histogram> && labels[i] == "le") {
      invariant_failed("a histogram cannot have a label named le", name);
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j] == labels[i]) invariant_failed("duplicate label name", labels[i]);
    }
  }

  bool no_labels = labels.empty();
  store.push_back(std::unique_ptr<Family<Series>>(
      new Family<Series>(std::move(name), std::move(help), std::move(labels), std::move(bounds))));
  Family<Series>& family = *store.back();
  order_.emplace_back(&family);
  // An unlabelled family has exactly one series and exposes it (as 0) from the start, as the
  // Python client does.
  if (no_labels) family.get_or_create({});
  return family;
}

CounterFamily& Registry::counter(std::string name, std::string help,
                                 std::vector<std::string> labels) {
  return declare(counters_, std::move(name), std::move(help), std::move(labels), {});
}

GaugeFamily& Registry::gauge(std::string name, std::string help, std::vector<std::string> labels) {
  return declare(gauges_, std::move(name), std::move(help), std::move(labels), {});
}

HistogramFamily& Registry::histogram(std::string name, std::string help,
                                     std::vector<std::string> labels,
                                     std::vector<double> upper_bounds) {
  // Bounds may end in +Inf, as LiteLLM's do; the +Inf bucket is always implicit here.
  if (!upper_bounds.empty() && upper_bounds.back() == std::numeric_limits<double>::infinity()) {
    upper_bounds.pop_back();
  }
  if (upper_bounds.empty()) invariant_failed("a histogram needs at least one finite bound", name);
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    bool ordered =
        std::isfinite(upper_bounds[i]) && (i == 0 || upper_bounds[i - 1] < upper_bounds[i]);
    if (!ordered) invariant_failed("histogram bounds must be finite and strictly ascending", name);
  }
  return declare(histograms_, std::move(name), std::move(help), std::move(labels),
                 std::move(upper_bounds));
}

void Registry::add_collector(std::function<void(std::string& out)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::render() const {
  std::string out;
  out.reserve(kRenderReserveBytes);
  std::lock_guard lock(mu_);
  for (const FamilyRef& ref : order_) {
    std::visit([&](const auto* f) { f->append_exposition(out); }, ref);
  }
  for (const auto& collector : collectors_) collector(out);
  return out;
}

// --- bounds ---------------------------------------------------------------------------------

std::string format_bound(double bound) {
  if (std::isnan(bound)) return "NaN";
  if (std::isinf(bound)) return bound > 0 ? "+Inf" : "-Inf";
  std::string s = python_repr(bound);
  size_t dot = s.find('.');
  if (bound > 0 && dot != std::string::npos && dot > kGoMaxDotPosition) {
    // floatToGoString: mantissa = s[0] + "." + s[1:dot] + s[dot+1:], stripped of trailing '0'
    // and '.', then "e+0" + str(dot - 1) -- the literal "0" makes 10 integer digits "e+010".
    std::string mantissa = s.substr(0, 1) + "." + s.substr(1, dot - 1) + s.substr(dot + 1);
    while (!mantissa.empty() && (mantissa.back() == '0' || mantissa.back() == '.')) {
      mantissa.pop_back();
    }
    return fmt::format("{}e+0{}", mantissa, dot - 1);
  }
  return s;
}

}  // namespace ondol::metrics
