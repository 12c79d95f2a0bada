#include "bench/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "bench/stats.h"

namespace ondol::bench {

namespace {

constexpr int kWidth = 1140;
constexpr int kHeight = 660;
constexpr int kPanelHeight = 270;
constexpr int kMarginLeft = 62, kMarginRight = 16, kMarginTop = 34, kMarginBottom = 40;
constexpr size_t kMaxCdfPoints = 400;
constexpr int kNumTicks = 5;
constexpr double kMarkerLabelWidth = 80;

struct Box {
  double x, y, w, h;  // the panel, margins included
  double left() const { return x + kMarginLeft; }
  double right() const { return x + w - kMarginRight; }
  double top() const { return y + kMarginTop; }
  double bottom() const { return y + h - kMarginBottom; }
};

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// A "nice" step (1, 2 or 5 times a power of ten) for about kNumTicks ticks over [0, max].
double nice_step(double max) {
  if (!(max > 0)) return 1;
  double raw = max / kNumTicks;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * mag;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  if (std::fabs(v) >= 100) return fmt::format("{:.0f}", v);
  if (std::fabs(v) >= 1) return fmt::format("{:.4g}", v);
  return fmt::format("{:.3g}", v);
}

class Panel {
 public:
  Panel(std::string& svg, Box box, double x_max, double y_max)
      : svg_(svg), box_(box), x_max_(x_max > 0 ? x_max : 1), y_max_(y_max > 0 ? y_max : 1) {}

  double px(double x) const { return box_.left() + x / x_max_ * (box_.right() - box_.left()); }
  double py(double y) const { return box_.bottom() - y / y_max_ * (box_.bottom() - box_.top()); }

  void axes(std::string_view title, std::string_view x_label, std::string_view y_label) {
    svg_ += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        box_.left(), box_.y + 20, escape(title));
    svg_ += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
        "stroke=\"#888\"/>\n",
        box_.left(), box_.top(), box_.right() - box_.left(), box_.bottom() - box_.top());
    double xs = nice_step(x_max_), ys = nice_step(y_max_);
    for (double v = 0; v <= x_max_ * 1.0001; v += xs) {
      svg_ += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>"
          "<text x=\"{0:.1f}\" y=\"{3:.1f}\" font-size=\"10\" text-anchor=\"middle\">{4}</text>\n",
          px(v), box_.top(), box_.bottom(), box_.bottom() + 13, tick_label(v));
    }
    for (double v = 0; v <= y_max_ * 1.0001; v += ys) {
      svg_ += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#eee\"/>"
          "<text x=\"{3:.1f}\" y=\"{4:.1f}\" font-size=\"10\" text-anchor=\"end\">{5}</text>\n",
          box_.left(), py(v), box_.right(), box_.left() - 4, py(v) + 3, tick_label(v));
    }
    svg_ += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n",
        (box_.left() + box_.right()) / 2, box_.bottom() + 30, escape(x_label));
    svg_ += fmt::format(
        "<text x=\"{0:.1f}\" y=\"{1:.1f}\" font-size=\"11\" text-anchor=\"middle\" "
        "transform=\"rotate(-90 {0:.1f} {1:.1f})\">{2}</text>\n",
        box_.x + 14, (box_.top() + box_.bottom()) / 2, escape(y_label));
  }

  void line(const std::vector<std::pair<double, double>>& points, std::string_view color) {
    if (points.empty()) return;
    svg_ +=
        fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"", color);
    for (const auto& [x, y] : points) svg_ += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg_ += "\"/>\n";
  }

  void marker(double x, std::string_view label, std::string_view color, int row) {
    // The label goes right of the line, or left of it near the panel's right edge.
    bool left = px(x) > box_.right() - kMarkerLabelWidth;
    svg_ += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\" "
        "stroke-dasharray=\"4 3\"/><text x=\"{4:.1f}\" y=\"{5:.1f}\" font-size=\"10\" "
        "fill=\"{3}\" text-anchor=\"{7}\">{6}</text>\n",
        px(x), box_.top(), box_.bottom(), color, left ? px(x) - 3 : px(x) + 3,
        box_.top() + 12 + 12 * row, escape(label), left ? "end" : "start");
  }

  void legend(std::string_view text, std::string_view color, int row) {
    svg_ += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" fill=\"{}\" "
        "text-anchor=\"end\">{}</text>\n",
        box_.right() - 4, box_.top() + 14 + 13 * row, color, escape(text));
  }

  void note(std::string_view text) {
    svg_ += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" fill=\"#888\" "
        "text-anchor=\"middle\">{}</text>\n",
        (box_.left() + box_.right()) / 2, (box_.top() + box_.bottom()) / 2, escape(text));
  }

 private:
  std::string& svg_;
  Box box_;
  double x_max_, y_max_;
};

void cdf_panel(std::string& svg, Box box, std::string_view title, std::vector<double> values_ms,
               std::string_view color) {
  std::sort(values_ms.begin(), values_ms.end());
  double x_max = values_ms.empty() ? 1 : values_ms.back() * 1.05;
  Panel p(svg, box, x_max, 1.0);
  p.axes(title, "milliseconds", "fraction of samples");
  if (values_ms.empty()) {
    p.note("no samples");
    return;
  }
  std::vector<std::pair<double, double>> points;
  size_t n = values_ms.size();
  size_t steps = std::min(n, kMaxCdfPoints);
  points.emplace_back(values_ms.front(), 0.0);
  for (size_t k = 0; k < steps; ++k) {
    size_t idx = steps == 1 ? n - 1 : k * (n - 1) / (steps - 1);
    points.emplace_back(values_ms[idx], static_cast<double>(idx + 1) / static_cast<double>(n));
  }
  p.line(points, color);
  double p50 = percentile_sorted(values_ms, 50), p99 = percentile_sorted(values_ms, 99);
  p.marker(p50, fmt::format("p50 {:.2f} ms", p50), "#2a7", 0);
  p.marker(p99, fmt::format("p99 {:.2f} ms", p99), "#c33", 1);
  p.legend(fmt::format("n = {}", n), "#444", 3);
}

void series_panel(std::string& svg, Box box, std::string_view title, std::string_view y_label,
                  const std::vector<ThroughputPoint>& points, bool tokens, std::string_view color) {
  double x_max = std::max(1.0, static_cast<double>(points.size()));
  double y_max = 0;
  std::vector<std::pair<double, double>> line;
  for (const auto& pt : points) {
    double v = tokens ? pt.output_tokens_per_s : pt.requests_per_s;
    y_max = std::max(y_max, v);
    // Each bucket drawn as a step over its second.
    line.emplace_back(pt.t_s, v);
    line.emplace_back(pt.t_s + 1, v);
  }
  Panel p(svg, box, x_max, y_max * 1.1);
  p.axes(title, "seconds since the start", y_label);
  p.line(line, color);
  if (points.empty()) p.note("no samples");
}

}  // namespace

std::string render_svg(const PlotInfo& info, const BenchmarkMetrics& m,
                       const std::vector<RequestOutput>& outputs) {
  std::vector<double> ttfts, itls, e2els;
  for (const auto& o : outputs) {
    if (!o.success) continue;
    ttfts.push_back(o.ttft_s * 1000);
    e2els.push_back(o.latency_s * 1000);
    for (double v : o.itl_s) itls.push_back(v * 1000);
  }
  std::string svg = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"16\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{2}</text>\n"
      "<text x=\"16\" y=\"44\" font-size=\"12\" fill=\"#444\">{3}</text>\n",
      kWidth, kHeight, escape(info.title),
      escape(fmt::format("{} ok, {} failed in {:.2f} s: {:.2f} req/s, {:.1f} output tok/s",
                         m.completed, m.failed, m.duration_s, m.request_throughput,
                         m.output_throughput)));
  const double top = 56, third = kWidth / 3.0, half = kWidth / 2.0;
  cdf_panel(svg, {0, top, third, kPanelHeight}, "TTFT (CDF)", std::move(ttfts), "#1f77b4");
  cdf_panel(svg, {third, top, third, kPanelHeight}, "ITL (CDF)", std::move(itls), "#9467bd");
  cdf_panel(svg, {2 * third, top, third, kPanelHeight}, "E2E latency (CDF)", std::move(e2els),
            "#ff7f0e");
  series_panel(svg, {0, top + kPanelHeight + 10, half, kPanelHeight}, "Output tokens per second",
               "tokens/s", m.throughput_over_time, true, "#1f77b4");
  series_panel(svg, {half, top + kPanelHeight + 10, half, kPanelHeight},
               "Requests completed per second", "requests/s", m.throughput_over_time, false,
               "#2ca02c");
  svg += "</svg>\n";
  return svg;
}

}  // namespace ondol::bench
