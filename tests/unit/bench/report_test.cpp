#include "bench/report.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>

namespace ondol::bench {
namespace {

std::vector<RequestOutput> outputs() {
  RequestOutput a;
  a.success = true;
  a.ttft_s = 0.05;
  a.latency_s = 0.09;
  a.itl_s = {0.01, 0.01, 0.02};
  a.prompt_tokens = 7;
  a.output_tokens = 4;
  a.generated_text = "one two three four";
  RequestOutput b;
  b.error = "HTTP 429: slow down";
  b.latency_s = 0.001;
  return {a, b};
}

RunInfo info() {
  return {.date = "20260102-030405",
          .backend = "openai",
          .model_id = "org/stories260K",
          .tokenizer_id = "org/stories260K",
          .num_prompts = 2,
          .request_rate = INFINITY,
          .burstiness = 1.0,
          .max_concurrency = 8,
          .percentile_metrics = {"ttft", "tpot", "itl", "e2el"},
          .goodput = true};
}

TEST(Report, TableFollowsVllmLayout) {
  auto m = compute_metrics(outputs(), 0.1, {.ttft_ms = 100}, {50, 99.9});
  std::string t = format_result_table(info(), m);
  EXPECT_TRUE(t.starts_with("============ Serving Benchmark Result ============\n")) << t;
  EXPECT_NE(t.find("Successful requests:                     1         \n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("Failed requests:                         1"), std::string::npos);
  EXPECT_NE(t.find("1 x HTTP 429: slow down"), std::string::npos);
  EXPECT_NE(t.find("Maximum request concurrency:             8"), std::string::npos);
  EXPECT_EQ(t.find("Request rate configured"), std::string::npos);  // inf is not printed
  EXPECT_NE(t.find("Benchmark duration (s):                  0.10"), std::string::npos);
  EXPECT_NE(t.find("Request goodput (req/s):                 10.00"), std::string::npos);
  EXPECT_NE(t.find("---------------Time to First Token----------------\n"), std::string::npos);
  EXPECT_NE(t.find("Mean TTFT (ms):                          50.00"), std::string::npos);
  EXPECT_NE(t.find("P99.9 ITL (ms):"), std::string::npos);
  EXPECT_NE(t.find("Median TPOT (ms):                        13.33"), std::string::npos);
  EXPECT_NE(t.find("-----Time per Output Token (excl. 1st token)------\n"), std::string::npos);
  EXPECT_TRUE(t.ends_with(std::string(50, '=') + "\n"));
}

TEST(Report, ResultJsonHasVllmKeys) {
  auto m = compute_metrics(outputs(), 0.1, {}, {99});
  std::string json = result_json(info(), m, outputs());
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError());
  for (const char* key : {"date",
                          "backend",
                          "model_id",
                          "tokenizer_id",
                          "num_prompts",
                          "request_rate",
                          "burstiness",
                          "max_concurrency",
                          "duration",
                          "completed",
                          "failed",
                          "total_input_tokens",
                          "total_output_tokens",
                          "request_throughput",
                          "request_goodput",
                          "output_throughput",
                          "total_token_throughput",
                          "mean_ttft_ms",
                          "median_ttft_ms",
                          "std_ttft_ms",
                          "p99_ttft_ms",
                          "mean_tpot_ms",
                          "median_tpot_ms",
                          "std_tpot_ms",
                          "p99_tpot_ms",
                          "mean_itl_ms",
                          "median_itl_ms",
                          "std_itl_ms",
                          "p99_itl_ms",
                          "mean_e2el_ms",
                          "median_e2el_ms",
                          "std_e2el_ms",
                          "p99_e2el_ms",
                          "input_lens",
                          "output_lens",
                          "ttfts",
                          "itls",
                          "generated_texts",
                          "errors",
                          "throughput_over_time"}) {
    EXPECT_TRUE(d.HasMember(key)) << key;
  }
  EXPECT_STREQ(d["request_rate"].GetString(), "inf");
  EXPECT_EQ(d["max_concurrency"].GetInt(), 8);
  EXPECT_EQ(d["completed"].GetInt(), 1);
  EXPECT_EQ(d["failed"].GetInt(), 1);
  EXPECT_EQ(d["itls"].Size(), 2u);
  EXPECT_EQ(d["itls"][0].Size(), 3u);
  EXPECT_STREQ(d["errors"][1].GetString(), "HTTP 429: slow down");
  EXPECT_STREQ(d["errors"][0].GetString(), "");
  EXPECT_STREQ(d["generated_texts"][0].GetString(), "one two three four");
  EXPECT_EQ(d["input_lens"][0].GetInt(), 7);
  EXPECT_DOUBLE_EQ(d["mean_ttft_ms"].GetDouble(), 50);
  EXPECT_TRUE(d["throughput_over_time"][0].HasMember("output_tokens_per_s"));
}

TEST(Report, DefaultFileNameAsVllm) {
  RunInfo i = info();
  EXPECT_EQ(default_result_filename(i),
            "openai-infqps-concurrency8-stories260K-20260102-030405.json");
  i.request_rate = 10;
  i.max_concurrency.reset();
  EXPECT_EQ(default_result_filename(i), "openai-10.0qps-stories260K-20260102-030405.json");
  i.request_rate = 2.5;
  EXPECT_EQ(default_result_filename(i), "openai-2.5qps-stories260K-20260102-030405.json");
}

}  // namespace
}  // namespace ondol::bench
