// The registry's exposition is compared byte for byte with golden text in Prometheus's 0.0.4
// format; concurrency tests check that lock-free updates lose nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics/registry.h"

namespace ondol::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// --- exposition -----------------------------------------------------------------------------

TEST(MetricsRegistry, UnlabelledCounterExposesZeroFromDeclaration) {
  Registry r;
  r.counter("http_requests_total", "Total HTTP requests.");
  EXPECT_EQ(r.render(),
            "# HELP http_requests_total Total HTTP requests.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total 0\n");
}

TEST(MetricsRegistry, UnlabelledCounterKeepsTotalSuffixOnHelpAndType) {
  Registry r;
  Counter* c = r.counter("http_requests_total", "Total HTTP requests.").with({});
  c->inc();
  c->inc(2);
  EXPECT_EQ(c->value(), 3.0);
  EXPECT_EQ(r.render(),
            "# HELP http_requests_total Total HTTP requests.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total 3\n");
}

TEST(MetricsRegistry, LabelledCounterWithColonNameSortsSeriesByLabelValues) {
  Registry r;
  CounterFamily& f = r.counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
                               {"engine", "model_name"});
  f.with({"0", "tiny"})->inc(7);
  f.with({"0", "big"})->inc(0.5);
  f.with({"1", "alpha"})->inc(1);
  EXPECT_EQ(r.render(),
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n"
            "# TYPE vllm:prompt_tokens_total counter\n"
            "vllm:prompt_tokens_total{engine=\"0\",model_name=\"big\"} 0.5\n"
            "vllm:prompt_tokens_total{engine=\"0\",model_name=\"tiny\"} 7\n"
            "vllm:prompt_tokens_total{engine=\"1\",model_name=\"alpha\"} 1\n");
}

TEST(MetricsRegistry, LabelledFamilyWithoutSeriesHasOnlyHelpAndType) {
  Registry r;
  r.gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
          {"model_name"});
  EXPECT_EQ(r.render(),
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n");
}

TEST(MetricsRegistry, GaugeValuesAndSpellings) {
  Registry r;
  GaugeFamily& f = r.gauge("g", "Values.", {"k"});
  f.with({"a"})->set(0.25);
  Gauge* b = f.with({"b"});
  b->inc(3);
  b->dec(4.5);  // -1.5
  f.with({"c"})->set(kInf);
  f.with({"d"})->set(-kInf);
  f.with({"e"})->set(std::nan(""));
  f.with({"f"})->set(1e20);
  f.with({"g"})->set(1.5e-7);
  f.with({"h"})->set(1e15);  // exact integer: plain digits
  f.with({"i"})->set(0.1);
  f.with({"j"})->set(-0.0);
  f.with({"k"})->set(4294967296.0 * 1024);  // 4 TiB of virtual memory
  EXPECT_EQ(b->value(), -1.5);
  EXPECT_EQ(r.render(),
            "# HELP g Values.\n"
            "# TYPE g gauge\n"
            "g{k=\"a\"} 0.25\n"
            "g{k=\"b\"} -1.5\n"
            "g{k=\"c\"} +Inf\n"
            "g{k=\"d\"} -Inf\n"
            "g{k=\"e\"} NaN\n"
            "g{k=\"f\"} 1e+20\n"
            "g{k=\"g\"} 1.5e-07\n"
            "g{k=\"h\"} 1000000000000000\n"
            "g{k=\"i\"} 0.1\n"
            "g{k=\"j\"} 0\n"
            "g{k=\"k\"} 4398046511104\n");
}

TEST(MetricsRegistry, EscapesHelpAndLabelValues) {
  Registry r;
  // HELP escapes backslash and newline only; label values also escape the double quote.
  CounterFamily& f = r.counter("esc_total", "Path C:\\tmp\nsecond \"line\"", {"path"});
  f.with({"say \"hi\"\\\nbye"})->inc();
  EXPECT_EQ(r.render(),
            "# HELP esc_total Path C:\\\\tmp\\nsecond \"line\"\n"
            "# TYPE esc_total counter\n"
            "esc_total{path=\"say \\\"hi\\\"\\\\\\nbye\"} 1\n");
}

TEST(MetricsRegistry, UnlabelledHistogramGolden) {
  Registry r;
  Histogram* h =
      r.histogram("http_request_duration_seconds", "Duration.", {}, {0.005, 0.25, 1, 10}).with({});
  for (double v : {0.25, 0.5, 1.0, 2.5, 100.0, 0.0}) h->observe(v);  // bounds are inclusive
  EXPECT_EQ(r.render(),
            "# HELP http_request_duration_seconds Duration.\n"
            "# TYPE http_request_duration_seconds histogram\n"
            "http_request_duration_seconds_bucket{le=\"0.005\"} 1\n"
            "http_request_duration_seconds_bucket{le=\"0.25\"} 2\n"
            "http_request_duration_seconds_bucket{le=\"1.0\"} 4\n"
            "http_request_duration_seconds_bucket{le=\"10.0\"} 5\n"
            "http_request_duration_seconds_bucket{le=\"+Inf\"} 6\n"
            "http_request_duration_seconds_sum 104.25\n"
            "http_request_duration_seconds_count 6\n");
  EXPECT_EQ(h->cumulative_count(0), 1u);
  EXPECT_EQ(h->cumulative_count(1), 2u);
  EXPECT_EQ(h->cumulative_count(2), 4u);
  EXPECT_EQ(h->cumulative_count(3), 5u);
  EXPECT_EQ(h->cumulative_count(4), 6u);
  EXPECT_EQ(h->count(), 6u);
  EXPECT_EQ(h->sum(), 104.25);
}

TEST(MetricsRegistry, UnlabelledHistogramExposesZerosFromDeclaration) {
  Registry r;
  r.histogram("h", "Empty.", {}, {1});
  EXPECT_EQ(r.render(),
            "# HELP h Empty.\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1.0\"} 0\n"
            "h_bucket{le=\"+Inf\"} 0\n"
            "h_sum 0\n"
            "h_count 0\n");
}

TEST(MetricsRegistry, LabelledHistogramPutsLeLastAndEscapes) {
  Registry r;
  HistogramFamily& f = r.histogram("vllm:time_to_first_token_seconds",
                                   "Histogram of time to first token in seconds.",
                                   {"engine", "model_name"}, {0.1, 2.5});
  f.with({"0", "m\"x"})->observe(3);
  f.with({"0", "a"})->observe(0.05);
  EXPECT_EQ(
      r.render(),
      "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in "
      "seconds.\n"
      "# TYPE vllm:time_to_first_token_seconds histogram\n"
      "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"a\",le=\"0.1\"} 1\n"
      "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"a\",le=\"2.5\"} 1\n"
      "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"a\",le=\"+Inf\"} 1\n"
      "vllm:time_to_first_token_seconds_sum{engine=\"0\",model_name=\"a\"} 0.05\n"
      "vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"a\"} 1\n"
      "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"m\\\"x\",le=\"0.1\"} 0\n"
      "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"m\\\"x\",le=\"2.5\"} 0\n"
      "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"m\\\"x\",le=\"+Inf\"} 1\n"
      "vllm:time_to_first_token_seconds_sum{engine=\"0\",model_name=\"m\\\"x\"} 3\n"
      "vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"m\\\"x\"} 1\n");
}

// LiteLLM declares its buckets ending in float("inf"); that bound is the implicit +Inf bucket.
TEST(MetricsRegistry, HistogramDropsTrailingInfBound) {
  Registry r;
  Histogram* h = r.histogram("h", "H.", {}, {1, 1e6, kInf}).with({});
  h->observe(kInf);
  h->observe(5e6);
  EXPECT_EQ(r.render(),
            "# HELP h H.\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1.0\"} 0\n"
            "h_bucket{le=\"1e+06\"} 0\n"
            "h_bucket{le=\"+Inf\"} 2\n"
            "h_sum +Inf\n"
            "h_count 2\n");
}

// As in the Python client, NaN compares below no bound and is counted in +Inf.
TEST(MetricsRegistry, HistogramCountsNaNInInfBucket) {
  Registry r;
  Histogram* h = r.histogram("h", "H.", {}, {1}).with({});
  h->observe(std::nan(""));
  EXPECT_EQ(h->cumulative_count(0), 0u);
  EXPECT_EQ(h->cumulative_count(1), 1u);
  EXPECT_EQ(h->count(), 1u);
  EXPECT_TRUE(std::isnan(h->sum()));
}

TEST(MetricsRegistry, FamiliesInDeclarationOrderThenCollectors) {
  Registry r;
  r.gauge("zeta", "Z.");
  r.counter("alpha_total", "A.");
  r.histogram("mid", "M.", {}, {1});
  r.add_collector([](std::string& out) { out.append("# collector one\n"); });
  r.add_collector([](std::string& out) { out.append("# collector two\n"); });
  std::string text = r.render();
  size_t zeta = text.find("# HELP zeta ");
  size_t alpha = text.find("# HELP alpha_total ");
  size_t mid = text.find("# HELP mid ");
  size_t one = text.find("# collector one\n");
  size_t two = text.find("# collector two\n");
  ASSERT_NE(two, std::string::npos);
  EXPECT_LT(zeta, alpha);
  EXPECT_LT(alpha, mid);
  EXPECT_LT(mid, one);
  EXPECT_LT(one, two);
  EXPECT_EQ(text.substr(two), "# collector two\n");
}

// --- declaration and series identity ---------------------------------------------------------

TEST(MetricsRegistry, DeclaringTwiceReturnsTheSameFamily) {
  Registry r;
  CounterFamily& a = r.counter("req_total", "Requests.", {"code"});
  CounterFamily& b = r.counter("req_total", "Requests (again).", {"code"});
  EXPECT_EQ(&a, &b);
  a.with({"200"})->inc();
  b.with({"200"})->inc();
  GaugeFamily& g1 = r.gauge("depth", "Depth.");
  GaugeFamily& g2 = r.gauge("depth", "Depth.");
  EXPECT_EQ(&g1, &g2);
  HistogramFamily& h1 = r.histogram("lat", "L.", {"m"}, {1, 2});
  HistogramFamily& h2 = r.histogram("lat", "L.", {"m"}, {1, 2, kInf});
  EXPECT_EQ(&h1, &h2);
  std::string text = r.render();
  // One family each: HELP appears once with the first help text, and the series was shared.
  EXPECT_EQ(text.find("# HELP req_total Requests.\n"), 0u);
  EXPECT_EQ(text.find("# HELP req_total", 1), std::string::npos);
  EXPECT_NE(text.find("req_total{code=\"200\"} 2\n"), std::string::npos);
  EXPECT_EQ(text.find("# HELP depth", text.find("# HELP depth") + 1), std::string::npos);
}

TEST(MetricsRegistry, SeriesAndFamilyPointersStayValid) {
  Registry r;
  CounterFamily& family = r.counter("c_total", "C.", {"k"});
  Counter* first = family.with({"first"});
  first->inc(5);
  // Enough new series and families to force any container growth.
  for (int i = 0; i < 2000; ++i) family.with({"s" + std::to_string(i)})->inc();
  for (int i = 0; i < 200; ++i) r.gauge("g" + std::to_string(i), "G.");
  EXPECT_EQ(family.with({"first"}), first);
  EXPECT_EQ(family.with(std::vector<std::string>{"first"}), first);
  EXPECT_EQ(&r.counter("c_total", "C.", {"k"}), &family);
  EXPECT_EQ(first->value(), 5.0);
  first->inc();
  EXPECT_NE(r.render().find("c_total{k=\"first\"} 6\n"), std::string::npos);
}

TEST(MetricsRegistry, VectorAndListLookupsAgree) {
  Registry r;
  HistogramFamily& f = r.histogram("h", "H.", {"a", "b"}, {1});
  Histogram* x = f.with({"1", "2"});
  EXPECT_EQ(f.with(std::vector<std::string>{"1", "2"}), x);
  EXPECT_NE(f.with({"2", "1"}), x);
}

// Declaration mistakes are programming errors: they abort with a message in every build type.
using MetricsRegistryDeathTest = ::testing::Test;

TEST_F(MetricsRegistryDeathTest, RedeclaringWithAnotherTypeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  r.counter("x_total", "X.");
  EXPECT_DEATH(r.gauge("x_total", "X."), "another type");
}

TEST_F(MetricsRegistryDeathTest, RedeclaringWithOtherLabelsAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  r.counter("x_total", "X.", {"a"});
  EXPECT_DEATH(r.counter("x_total", "X.", {"b"}), "other labels");
}

TEST_F(MetricsRegistryDeathTest, RedeclaringWithOtherBucketsAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  r.histogram("h", "H.", {}, {1, 2});
  EXPECT_DEATH(r.histogram("h", "H.", {}, {1, 3}), "other buckets");
}

TEST_F(MetricsRegistryDeathTest, WrongNumberOfLabelValuesAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  CounterFamily& f = r.counter("x_total", "X.", {"a", "b"});
  EXPECT_DEATH(f.with({"only-one"}), "wrong number of label values");
}

TEST_F(MetricsRegistryDeathTest, InvalidNamesAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  EXPECT_DEATH(r.counter("9lives_total", "X."), "invalid metric name");
  EXPECT_DEATH(r.counter("has-dash", "X."), "invalid metric name");
  EXPECT_DEATH(r.counter("", "X."), "invalid metric name");
  EXPECT_DEATH(r.counter("ok_total", "X.", {"a:b"}), "invalid label name");
  EXPECT_DEATH(r.counter("ok_total", "X.", {"__reserved"}), "invalid label name");
  EXPECT_DEATH(r.counter("ok_total", "X.", {"a", "a"}), "duplicate label name");
  EXPECT_DEATH(r.histogram("h", "H.", {"le"}, {1}), "label named le");
}

TEST_F(MetricsRegistryDeathTest, BadBucketsAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  EXPECT_DEATH(r.histogram("h", "H.", {}, {2, 1}), "strictly ascending");
  EXPECT_DEATH(r.histogram("h", "H.", {}, {1, 1}), "strictly ascending");
  EXPECT_DEATH(r.histogram("h", "H.", {}, {std::nan(""), 1}), "strictly ascending");
  EXPECT_DEATH(r.histogram("h", "H.", {}, {}), "at least one finite bound");
  EXPECT_DEATH(r.histogram("h", "H.", {}, {kInf}), "at least one finite bound");
}

// --- concurrency ----------------------------------------------------------------------------

constexpr int kThreads = 8;
constexpr int kIncrementsPerThread = 100000;

TEST(MetricsRegistryConcurrency, CounterIncrementsAreExact) {
  Registry r;
  CounterFamily& f = r.counter("c_total", "C.", {"k"});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&f] {
      // Every thread resolves the same series concurrently, then updates it lock-free.
      Counter* whole = f.with({"whole"});
      Counter* half = f.with({"half"});
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        whole->inc();
        half->inc(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(f.with({"whole"})->value(), double{kThreads} * kIncrementsPerThread);
  EXPECT_EQ(f.with({"half"})->value(), double{kThreads} * kIncrementsPerThread * 0.5);
}

TEST(MetricsRegistryConcurrency, GaugeIncAndDecCancelExactly) {
  Registry r;
  Gauge* g = r.gauge("in_flight", "In flight.").with({});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([g, t] {
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        if (t % 2 == 0)
          g->inc();
        else
          g->dec();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(g->value(), 0.0);
}

TEST(MetricsRegistryConcurrency, HistogramObservationsAreExactWhileScraped) {
  Registry r;
  HistogramFamily& f = r.histogram("h", "H.", {"k"}, {1, 2, 4});
  std::atomic<bool> done{false};
  // A scraper renders throughout; every snapshot must be self-consistent.
  std::thread scraper([&] {
    while (!done.load()) {
      std::string text = r.render();
      size_t inf = text.find("h_bucket{k=\"x\",le=\"+Inf\"} ");
      size_t count = text.find("h_count{k=\"x\"} ");
      if (inf == std::string::npos) continue;
      ASSERT_NE(count, std::string::npos);
      std::string inf_value = text.substr(inf, text.find('\n', inf) - inf);
      inf_value = inf_value.substr(inf_value.rfind(' ') + 1);
      std::string count_value = text.substr(count, text.find('\n', count) - count);
      count_value = count_value.substr(count_value.rfind(' ') + 1);
      ASSERT_EQ(inf_value, count_value);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&f, t] {
      Histogram* h = f.with({"x"});
      for (int i = 0; i < kIncrementsPerThread; ++i) h->observe(static_cast<double>(t % 5));
    });
  }
  for (auto& t : threads) t.join();
  done.store(true);
  scraper.join();

  Histogram* h = f.with({"x"});
  // Thread t observes t % 5: values 0,1,2,3,4,0,1,2 over 8 threads.
  constexpr uint64_t n = kIncrementsPerThread;
  EXPECT_EQ(h->cumulative_count(0), 4 * n);  // le=1: threads 0, 1, 5, 6
  EXPECT_EQ(h->cumulative_count(1), 6 * n);  // le=2: and threads 2, 7
  EXPECT_EQ(h->cumulative_count(2), 8 * n);  // le=4: and threads 3, 4
  EXPECT_EQ(h->cumulative_count(3), 8 * n);  // +Inf
  EXPECT_EQ(h->count(), 8 * n);
  EXPECT_EQ(h->sum(), double(n) * (0 + 1 + 2 + 3 + 4 + 0 + 1 + 2));
}

}  // namespace
}  // namespace ondol::metrics
