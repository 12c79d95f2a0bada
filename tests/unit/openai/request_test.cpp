#include "openai/request.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace ondol::openai {
namespace {

ApiError expect_error(Endpoint e, std::string_view body) {
  auto r = parse_request(e, body);
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
  if (auto* err = std::get_if<ApiError>(&r)) return *err;
  return {};
}

TEST(ParseRequest, ValidChatStream) {
  auto r = parse_request(Endpoint::ChatCompletions,
                         R"({"model":"m","messages":[{"role":"user","content":"hello world"}],
                             "stream":true,"stream_options":{"include_usage":true},
                             "max_tokens":7,"temperature":0.5,"custom_field":{"k":1}})");
  ASSERT_TRUE(std::holds_alternative<ProxyRequest>(r));
  auto& req = std::get<ProxyRequest>(r);
  EXPECT_EQ(req.model, "m");
  EXPECT_TRUE(req.stream);
  EXPECT_TRUE(req.include_usage);
  EXPECT_EQ(req.max_tokens, 7);
  EXPECT_GE(req.prompt_tokens_estimate, 1);
}

TEST(ParseRequest, Rejections) {
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, "{bad").status, 400);
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, "[1]").status, 400);
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, R"({"messages":[]})").param, "model");
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, R"({"model":"m"})").param, "messages");
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, R"({"model":"m","messages":[]})").param,
            "messages");
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions,
                         R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})")
                .param,
            "messages.[0].role");
  const char* base = R"({"model":"m","messages":[{"role":"user","content":"x"}],)";
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, std::string(base) + R"("temperature":5})").param,
            "temperature");
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, std::string(base) + R"("max_tokens":0})").param,
            "max_tokens");
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, std::string(base) + R"("max_tokens":"5"})").param,
            "max_tokens");
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, std::string(base) + R"("stream":"yes"})").param,
            "stream");
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions, std::string(base) + R"("n":1000})").param, "n");
  EXPECT_EQ(expect_error(Endpoint::ChatCompletions,
                         std::string(base) + R"("stop":["a","b","c","d","e"]})")
                .param,
            "stop");
  EXPECT_EQ(expect_error(Endpoint::Completions, R"({"model":"m"})").param, "prompt");
  EXPECT_EQ(expect_error(Endpoint::Embeddings, R"({"model":"m","input":"x","stream":true})").param,
            "stream");
}

TEST(ParseRequest, CompletionsAcceptTokenArrays) {
  auto r = parse_request(Endpoint::Completions, R"({"model":"m","prompt":[1,2,3]})");
  EXPECT_TRUE(std::holds_alternative<ProxyRequest>(r));
}

TEST(UpstreamBody, RewritesModelAndKeepsUnknownFields) {
  auto r = parse_request(Endpoint::ChatCompletions,
                         R"({"model":"public","messages":[{"role":"user","content":"x"}],
                             "vendor_extension":{"a":[1,2]}})");
  auto& req = std::get<ProxyRequest>(r);
  rapidjson::Document d;
  std::string body = upstream_body(req, "meta-llama/Llama-3.1-8B-Instruct", false);
  d.Parse(body.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["model"].GetString(), "meta-llama/Llama-3.1-8B-Instruct");
  ASSERT_TRUE(d.HasMember("vendor_extension"));
  EXPECT_EQ(d["vendor_extension"]["a"].Size(), 2u);

  body = upstream_body(req, "x", true);  // drop_params
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasMember("vendor_extension"));
  EXPECT_TRUE(d.HasMember("messages"));
}

}  // namespace
}  // namespace ondol::openai
