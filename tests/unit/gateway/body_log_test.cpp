#include "gateway/body_log.h"

#include <gtest/gtest.h>

namespace ondol::gateway {
namespace {

TEST(BodyLog, CredentialFieldsAndKeyShapedStringsAreRedacted) {
  const std::string body =
      R"({"model":"m","api_key":"sk-live-0123456789abcdef","metadata":{"Authorization":"Bearer abcdefghijkl"},)"
      R"("messages":[{"role":"user","content":"my key is sk-abcdefghijklmnop, keep it"}],"max_tokens":5})";
  const std::string out = redact_body(body, {});
  EXPECT_EQ(out.find("0123456789abcdef"), std::string::npos) << out;
  EXPECT_EQ(out.find("abcdefghijkl\""), std::string::npos) << out;
  EXPECT_EQ(out.find("abcdefghijklmnop"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("api_key":"[REDACTED]")"), std::string::npos) << out;
  EXPECT_NE(out.find("my key is sk-[REDACTED], keep it"), std::string::npos) << out;
  // Token counts are not secrets, and the content stays without redact_content.
  EXPECT_NE(out.find(R"("max_tokens":5)"), std::string::npos) << out;
}

TEST(BodyLog, ContentRedactionBlanksPromptsAndCompletionsOnly) {
  BodyLogOptions o;
  o.redact_content = true;
  const std::string req =
      R"({"model":"m","messages":[{"role":"user","content":"hello there"},)"
      R"({"role":"user","content":[{"type":"text","text":"parts too"}]}],"temperature":0})";
  const std::string out = redact_body(req, o);
  EXPECT_EQ(out.find("hello there"), std::string::npos) << out;
  EXPECT_EQ(out.find("parts too"), std::string::npos) << out;
  EXPECT_NE(out.find("[REDACTED 11 chars]"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("role":"user")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("temperature":0)"), std::string::npos) << out;
}

TEST(BodyLog, StreamsAreRedactedEventByEvent) {
  BodyLogOptions o;
  o.redact_content = true;
  const std::string sse =
      "data: {\"choices\":[{\"delta\":{\"content\":\"secret words\"}}]}\n\n"
      "data: {\"usage\":{\"prompt_tokens\":3}}\n\ndata: [DONE]\n\n";
  const std::string out = redact_body(sse, o);
  EXPECT_EQ(out.find("secret words"), std::string::npos) << out;
  EXPECT_NE(out.find("\"prompt_tokens\":3"), std::string::npos) << out;
  EXPECT_NE(out.find("data: [DONE]"), std::string::npos) << out;
}

TEST(BodyLog, NonJsonBodiesAreMaskedAndLongOnesCut) {
  EXPECT_EQ(redact_body("key=sk-0123456789abcdef rest", {}), "key=sk-[REDACTED] rest");
  EXPECT_EQ(redact_body("sk-short stays", {}), "sk-short stays");  // too short to be a key
  BodyLogOptions o;
  o.max_bytes = 10;
  EXPECT_EQ(redact_body(std::string(25, 'a'), o), "aaaaaaaaaa...[15 more bytes]");
}

TEST(BodyLog, SamplingRate) {
  EXPECT_FALSE(sample_body_log(0));
  EXPECT_TRUE(sample_body_log(1));
  int hits = 0;
  for (int i = 0; i < 10000; ++i) hits += sample_body_log(0.25) ? 1 : 0;
  EXPECT_GT(hits, 2200);
  EXPECT_LT(hits, 2800);
}

}  // namespace
}  // namespace ondol::gateway
