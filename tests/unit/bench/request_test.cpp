#include "bench/request.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace ondol::bench {
namespace {

std::string event(const std::string& json) {
  return "data: " + json + "\n\n";
}

std::string text_chunk(const std::string& text) {
  return event(R"({"id":"c","object":"text_completion","choices":[{"index":0,"text":")" + text +
               R"(","finish_reason":null}]})");
}

TEST(RequestBody, CompletionsAndChatBodies) {
  BodyParams p{.api = ApiKind::Completions,
               .model = "m",
               .temperature = 0,
               .seed = std::nullopt,
               .stream = true,
               .ignore_eos = true};
  rapidjson::Document d;
  std::string body = request_body(p, "say \"hi\"", 16);
  d.Parse(body.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["model"].GetString(), "m");
  EXPECT_STREQ(d["prompt"].GetString(), "say \"hi\"");
  EXPECT_EQ(d["max_tokens"].GetInt(), 16);
  EXPECT_TRUE(d["stream"].GetBool());
  EXPECT_TRUE(d["stream_options"]["include_usage"].GetBool());
  EXPECT_TRUE(d["ignore_eos"].GetBool());
  EXPECT_EQ(d["temperature"].GetDouble(), 0.0);
  EXPECT_FALSE(d.HasMember("seed"));

  p.api = ApiKind::Chat;
  p.stream = false;
  p.ignore_eos = false;
  p.seed = 42;
  body = request_body(p, "hello", 8);
  d.Parse(body.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["messages"][0]["role"].GetString(), "user");
  EXPECT_STREQ(d["messages"][0]["content"].GetString(), "hello");
  EXPECT_EQ(d["max_completion_tokens"].GetInt(), 8);
  EXPECT_FALSE(d.HasMember("stream_options"));
  EXPECT_FALSE(d.HasMember("ignore_eos"));
  EXPECT_EQ(d["seed"].GetInt(), 42);
}

TEST(ResponseReader, StreamTimingsFromContentChunksSplitAnywhere) {
  ResponseReader r(ApiKind::Completions);
  std::string first = text_chunk("Once");
  // The first event arrives in two TCP pieces: TTFT is when it completes.
  ASSERT_TRUE(r.feed(first.substr(0, 10), 0.040));
  ASSERT_TRUE(r.feed(first.substr(10), 0.050));
  ASSERT_TRUE(r.feed(text_chunk(" upon"), 0.060));
  ASSERT_TRUE(r.feed(text_chunk(" a") + text_chunk(" time"), 0.075));  // one read, two chunks
  ASSERT_TRUE(r.feed(text_chunk(""), 0.080));  // the finish chunk carries no token
  ASSERT_TRUE(r.feed(
      event(
          R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})") +
          "data: [DONE]\n\n",
      0.081));
  RequestOutput out;
  r.finish(0.082, 99, out);
  EXPECT_TRUE(out.success) << out.error;
  EXPECT_DOUBLE_EQ(out.ttft_s, 0.050);
  ASSERT_EQ(out.itl_s.size(), 3u);
  EXPECT_NEAR(out.itl_s[0], 0.010, 1e-12);
  EXPECT_NEAR(out.itl_s[1], 0.015, 1e-12);
  EXPECT_NEAR(out.itl_s[2], 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(out.latency_s, 0.082);
  EXPECT_EQ(out.prompt_tokens, 3);
  EXPECT_EQ(out.output_tokens, 4);
  EXPECT_EQ(out.generated_text, "Once upon a time");
}

TEST(ResponseReader, ChatRoleChunkIsNotTheFirstToken) {
  ResponseReader r(ApiKind::Chat);
  r.feed(event(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})"), 0.01);
  r.feed(event(R"({"choices":[{"index":0,"delta":{"content":"Hi"}}]})"), 0.05);
  r.feed(event(R"({"choices":[{"index":0,"delta":{"reasoning_content":" there"}}]})"), 0.07);
  r.feed("data: [DONE]\n\n", 0.08);
  RequestOutput out;
  r.finish(0.08, 12, out);
  EXPECT_TRUE(out.success);
  EXPECT_DOUBLE_EQ(out.ttft_s, 0.05);
  EXPECT_EQ(out.generated_text, "Hi there");
  EXPECT_EQ(out.output_tokens, 2);   // no usage: content chunks
  EXPECT_EQ(out.prompt_tokens, 12);  // no usage: the estimate
}

TEST(ResponseReader, ErrorEventsAndTruncatedStreamsFail) {
  ResponseReader r(ApiKind::Completions);
  r.feed(text_chunk("a"), 0.01);
  r.feed(event(R"({"error":{"message":"upstream went away","type":"server_error"}})") +
             "data: [DONE]\n\n",
         0.02);
  RequestOutput out;
  r.finish(0.02, 1, out);
  EXPECT_FALSE(out.success);
  EXPECT_EQ(out.error, "error in stream: upstream went away");

  ResponseReader cut(ApiKind::Completions);
  cut.feed(text_chunk("a"), 0.01);
  RequestOutput out2;
  cut.finish(0.02, 1, out2);
  EXPECT_FALSE(out2.success);
  EXPECT_EQ(out2.error, "the stream ended without [DONE]");
}

TEST(ResponseReader, WholeJsonResponse) {
  ResponseReader r(ApiKind::Chat);
  r.set_streaming(false);
  r.feed(R"({"choices":[{"index":0,"message":{"role":"assistant","content":"Hello world"}}],)",
         0.1);
  r.feed(R"("usage":{"prompt_tokens":5,"completion_tokens":2}})", 0.2);
  RequestOutput out;
  r.finish(0.3, 1, out);
  EXPECT_TRUE(out.success) << out.error;
  EXPECT_EQ(out.generated_text, "Hello world");
  EXPECT_DOUBLE_EQ(out.ttft_s, 0.3);
  EXPECT_DOUBLE_EQ(out.latency_s, 0.3);
  EXPECT_EQ(out.output_tokens, 2);
  EXPECT_EQ(out.prompt_tokens, 5);
}

TEST(ResponseReader, DescribesHttpErrors) {
  EXPECT_EQ(describe_http_error(503, R"({"error":{"message":"queue full","type":"server_error"}})"),
            "HTTP 503: queue full");
  EXPECT_EQ(describe_http_error(502, "Bad\ngateway"), "HTTP 502: Bad gateway");
  EXPECT_EQ(describe_http_error(500, ""), "HTTP 500");
}

}  // namespace
}  // namespace ondol::bench
