#include "bench/plot.h"

#include <gtest/gtest.h>

#include <regex>

namespace ondol::bench {
namespace {

// Checks that every element is closed in order (a small XML well-formedness check: tags,
// self-closing tags, the declaration) and returns the element names seen.
std::vector<std::string> check_well_formed(const std::string& svg) {
  std::vector<std::string> stack, seen;
  size_t pos = 0;
  while ((pos = svg.find('<', pos)) != std::string::npos) {
    size_t end = svg.find('>', pos);
    EXPECT_NE(end, std::string::npos);
    if (end == std::string::npos) break;
    std::string tag = svg.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.starts_with("?")) continue;
    if (tag.starts_with("/")) {
      EXPECT_FALSE(stack.empty()) << "stray </" << tag << ">";
      if (stack.empty()) break;
      EXPECT_EQ(stack.back(), tag.substr(1));
      stack.pop_back();
      continue;
    }
    std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    seen.push_back(name);
    // Attribute values must be quoted and free of raw '<' and '&'.
    EXPECT_EQ(tag.find('<'), std::string::npos);
    if (!tag.ends_with("/")) stack.push_back(name);
  }
  EXPECT_TRUE(stack.empty()) << "unclosed <" << (stack.empty() ? "" : stack.back()) << ">";
  return seen;
}

TEST(Plot, SvgIsWellFormedWithFivePanelsAndMarkers) {
  std::vector<RequestOutput> outputs;
  for (int i = 0; i < 200; ++i) {
    RequestOutput o;
    o.success = true;
    o.start_s = i * 0.01;
    o.ttft_s = 0.05 + (i % 10) * 0.001;
    o.itl_s = {0.01, 0.011, 0.012};
    o.latency_s = o.ttft_s + 0.033;
    o.output_tokens = 4;
    outputs.push_back(o);
  }
  auto m = compute_metrics(outputs, 2.5, {}, {99});
  std::string svg = render_svg({.title = "run <a & b>"}, m, outputs);
  EXPECT_TRUE(svg.starts_with("<?xml"));
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
  auto names = check_well_formed(svg);
  EXPECT_EQ(std::count(names.begin(), names.end(), "svg"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "polyline"), 5);  // 3 CDFs, 2 series
  EXPECT_NE(svg.find("run &lt;a &amp; b&gt;"), std::string::npos);
  EXPECT_NE(svg.find("p50 "), std::string::npos);
  EXPECT_NE(svg.find("p99 "), std::string::npos);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_EQ(svg.find("href"), std::string::npos);
  // Every coordinate is a number (no nan/inf from empty or degenerate data).
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(Plot, EmptyRunStillRendersValidSvg) {
  std::vector<RequestOutput> outputs(3);  // all failed
  auto m = compute_metrics(outputs, 0.0, {}, {99});
  std::string svg = render_svg({.title = "nothing"}, m, outputs);
  check_well_formed(svg);
  EXPECT_NE(svg.find("no samples"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

}  // namespace
}  // namespace ondol::bench
