// format_bound() must give the `le` strings of the Prometheus Python client (floatToGoString:
// Python's repr(), with 7+ integer digits rewritten Go-style), which vLLM and LiteLLM expose, so
// that dashboards and recording rules keyed on `le` keep matching. Expected strings below were
// produced by that function in CPython 3.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics/registry.h"

namespace ondol::metrics {
namespace {

struct Case {
  double bound;
  const char* expected;
};

void expect_all(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    EXPECT_EQ(format_bound(c.bound), c.expected) << "bound " << c.bound;
  }
}

TEST(MetricsFormatBound, VllmTimeToFirstTokenBuckets) {
  expect_all({{0.001, "0.001"}, {0.005, "0.005"},  {0.01, "0.01"}, {0.02, "0.02"}, {0.04, "0.04"},
              {0.06, "0.06"},   {0.08, "0.08"},    {0.1, "0.1"},   {0.25, "0.25"}, {0.5, "0.5"},
              {0.75, "0.75"},   {1.0, "1.0"},      {2.5, "2.5"},   {5.0, "5.0"},   {7.5, "7.5"},
              {10.0, "10.0"},   {20.0, "20.0"},    {40.0, "40.0"}, {80.0, "80.0"}, {160.0, "160.0"},
              {640.0, "640.0"}, {2560.0, "2560.0"}});
}

TEST(MetricsFormatBound, VllmRequestLatencyBuckets) {
  expect_all({{0.3, "0.3"},      {0.5, "0.5"},     {0.8, "0.8"},     {1.0, "1.0"},
              {1.5, "1.5"},      {2.0, "2.0"},     {2.5, "2.5"},     {5.0, "5.0"},
              {10.0, "10.0"},    {15.0, "15.0"},   {20.0, "20.0"},   {30.0, "30.0"},
              {40.0, "40.0"},    {50.0, "50.0"},   {60.0, "60.0"},   {120.0, "120.0"},
              {240.0, "240.0"},  {480.0, "480.0"}, {960.0, "960.0"}, {1920.0, "1920.0"},
              {7680.0, "7680.0"}});
}

// vLLM's build_1_2_5_buckets() for token counts, up to a 5M-token context: below a million the
// repr form ("500000.0"), from a million on the Go form ("1e+06").
TEST(MetricsFormatBound, VllmTokenCountBuckets) {
  expect_all({{1, "1.0"},           {2, "2.0"},           {5, "5.0"},         {10, "10.0"},
              {20, "20.0"},         {50, "50.0"},         {100, "100.0"},     {200, "200.0"},
              {500, "500.0"},       {1000, "1000.0"},     {2000, "2000.0"},   {5000, "5000.0"},
              {10000, "10000.0"},   {20000, "20000.0"},   {50000, "50000.0"}, {100000, "100000.0"},
              {200000, "200000.0"}, {500000, "500000.0"}, {1000000, "1e+06"}, {2000000, "2e+06"},
              {5000000, "5e+06"}});
}

TEST(MetricsFormatBound, LitellmLatencyBuckets) {
  expect_all({{0.005, "0.005"},
              {0.00625, "0.00625"},
              {0.0125, "0.0125"},
              {0.025, "0.025"},
              {0.05, "0.05"},
              {3.5, "3.5"},
              {9.5, "9.5"},
              {300.0, "300.0"},
              {3600.0, "3600.0"},
              {43200.0, "43200.0"},
              {86400.0, "86400.0"}});
}

TEST(MetricsFormatBound, PythonReprSwitchesToExponentOutsideItsRange) {
  expect_all({
      {0.0001, "0.0001"},  // decpt -3: still fixed
      {0.000123, "0.000123"},
      {1e-05, "1e-05"},  // decpt -4: exponent, two digits, signed
      {1.234e-05, "1.234e-05"},
      {5e-324, "5e-324"},  // smallest subnormal
      {2.2250738585072014e-308, "2.2250738585072014e-308"},
      {1e+16, "1e+16"},  // decpt 17: exponent, no ".0" on a lone digit
      {1.5e+16, "1.5e+16"},
      {1e+20, "1e+20"},
      {1e+100, "1e+100"},
      {1.7976931348623157e+308, "1.7976931348623157e+308"},
  });
}

TEST(MetricsFormatBound, GoStyleRewriteOfSevenOrMoreIntegerDigits) {
  expect_all({
      {123456.0, "123456.0"},  // '.' at index 6: kept
      {999999.0, "999999.0"},
      {1000000.5, "1.0000005e+06"},  // fraction digits join the mantissa
      {1000000.1, "1.0000001e+06"},
      {1234567.0, "1.234567e+06"},
      {9999999.0, "9.999999e+06"},
      {1e7, "1e+07"},
      {123456789.0, "1.23456789e+08"},
      {1e10, "1e+010"},  // the client's literal "e+0" prefix
      {1e15, "1e+015"},
      {9007199254740993.0, "9.007199254740992e+015"},  // rounds to 2^53 first
  });
}

TEST(MetricsFormatBound, ShortestRoundTripDigits) {
  expect_all({{0.1 + 0.2, "0.30000000000000004"},
              {1.0 / 3.0, "0.3333333333333333"},
              {12345.678, "12345.678"}});
}

// Negative values keep Python's repr (the Go rewrite applies to positive values only).
TEST(MetricsFormatBound, ZeroAndNegatives) {
  expect_all({{0.0, "0.0"},
              {-0.0, "-0.0"},
              {-1.0, "-1.0"},
              {-2.5, "-2.5"},
              {-1e-07, "-1e-07"},
              {-1e7, "-10000000.0"},
              {-1.7976931348623157e+308, "-1.7976931348623157e+308"}});
}

TEST(MetricsFormatBound, InfinitiesAndNaN) {
  EXPECT_EQ(format_bound(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_bound(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_bound(std::nan("")), "NaN");
}

// Every string must parse back to the exact bound, or `le` would name a different bucket.
TEST(MetricsFormatBound, RoundTripsThroughStrtod) {
  double v = 1e-9;
  for (int i = 0; i < 2000; ++i) {
    std::string s = format_bound(v);
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
    v *= 1.037;
  }
}

}  // namespace
}  // namespace ondol::metrics
