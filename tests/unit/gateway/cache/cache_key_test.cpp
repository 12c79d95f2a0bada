// The response cache's key and store: canonical form (field order, number spelling, ignored
// fields), the determinism rule, per-request controls, the LRU and the Redis value format.
#include "gateway/cache/cache_key.h"

#include <gtest/gtest.h>

#include "gateway/cache/response_cache.h"

namespace ondol::gateway::cache {
namespace {

using openai::Endpoint;

rapidjson::Document parse(const char* json) {
  rapidjson::Document d;
  d.Parse(json);
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

std::string key_of(const char* json, Endpoint e = Endpoint::ChatCompletions,
                   std::string_view model = "m") {
  rapidjson::Document d = parse(json);
  return cache_key(e, model, d);
}

TEST(CacheKey, FieldOrderDoesNotMatterAtAnyDepth) {
  EXPECT_EQ(key_of(R"({"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]})"),
            key_of(R"({"messages":[{"content":"hi","role":"user"}],"temperature":0,"model":"m"})"));
}

TEST(CacheKey, IntegralNumbersAreOneValue) {
  EXPECT_EQ(key_of(R"({"temperature":0,"max_tokens":16})"),
            key_of(R"({"temperature":0.0,"max_tokens":16.0})"));
  EXPECT_NE(key_of(R"({"temperature":0,"top_p":0.5})"), key_of(R"({"temperature":0,"top_p":0.25})"));
}

TEST(CacheKey, IrrelevantFieldsAreIgnored) {
  const char* base = R"({"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]})";
  EXPECT_EQ(key_of(base),
            key_of(R"({"model":"other-alias","temperature":0,"user":"u1","metadata":{"a":1},)"
                   R"("cache":{"ttl":5},"messages":[{"role":"user","content":"hi"}]})"));
}

TEST(CacheKey, WhatChangesTheAnswerChangesTheKey) {
  const char* base = R"({"temperature":0,"messages":[{"role":"user","content":"hi"}]})";
  EXPECT_NE(key_of(base), key_of(R"({"temperature":0,"messages":[{"role":"user","content":"ho"}]})"));
  EXPECT_NE(key_of(base), key_of(R"({"temperature":0,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]})"));
  EXPECT_NE(key_of(base), key_of(R"({"temperature":0,"stream":true,"messages":[{"role":"user","content":"hi"}]})"));
  EXPECT_NE(key_of(base), key_of(base, Endpoint::ChatCompletions, "other-model"));
  EXPECT_NE(key_of(base), key_of(base, Endpoint::Completions));
  // A nested "user" is content, not the caller's id.
  EXPECT_NE(key_of(R"({"temperature":0,"x":{"user":"a"}})"), key_of(R"({"temperature":0,"x":{"user":"b"}})"));
}

TEST(CacheKey, IsHexSha256) {
  std::string k = key_of(R"({"temperature":0})");
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(CacheKey, CanonicalFormIsSortedAndCompact) {
  rapidjson::Document d = parse(R"({"b":1.0,"a":[true,null,"x"],"user":"u"})");
  EXPECT_EQ(canonical_request(Endpoint::ChatCompletions, "m", d),
            R"(["chat_completions","m",{"a":[true,null,"x"],"b":1}])")
      << "(the endpoint's name as openai::to_string spells it)";
}

TEST(Determinism, TemperatureZeroOrSeed) {
  EXPECT_TRUE(is_deterministic(Endpoint::ChatCompletions, parse(R"({"temperature":0})")));
  EXPECT_TRUE(is_deterministic(Endpoint::ChatCompletions, parse(R"({"temperature":0.0})")));
  EXPECT_TRUE(is_deterministic(Endpoint::Completions, parse(R"({"temperature":0.7,"seed":42})")));
  EXPECT_FALSE(is_deterministic(Endpoint::ChatCompletions, parse(R"({})")));  // default 1
  EXPECT_FALSE(is_deterministic(Endpoint::ChatCompletions, parse(R"({"temperature":0.2})")));
  EXPECT_FALSE(is_deterministic(Endpoint::ChatCompletions, parse(R"({"seed":null})")));
  EXPECT_TRUE(is_deterministic(Endpoint::Embeddings, parse(R"({"input":"x"})")));
}

TEST(CacheControlTest, LiteLLMNames) {
  CacheControl c = read_cache_control(
      parse(R"({"cache":{"no-cache":true,"no-store":true,"ttl":60,"s-maxage":5,"use-cache":true}})"));
  EXPECT_TRUE(c.no_cache);
  EXPECT_TRUE(c.no_store);
  EXPECT_TRUE(c.use_cache);
  EXPECT_EQ(c.ttl_s, 60);
  EXPECT_EQ(c.s_maxage_s, 5);
  CacheControl none = read_cache_control(parse(R"({"cache":"yes"})"));
  EXPECT_FALSE(none.no_cache || none.no_store || none.use_cache || none.ttl_s || none.s_maxage_s);
}

TEST(LocalResponseCacheTest, ExpiresAndEvictsLeastRecentlyUsed) {
  LocalResponseCache c(2);
  c.put("a", {.body = "A"}, 1000);
  c.put("b", {.body = "B"}, 1000);
  ASSERT_TRUE(c.get("a", 10));  // a is now the most recent
  c.put("c", {.body = "C"}, 1000);
  EXPECT_FALSE(c.get("b", 10));
  EXPECT_EQ(c.get("a", 10)->body, "A");
  EXPECT_EQ(c.get("c", 10)->body, "C");
  EXPECT_FALSE(c.get("c", 1000));  // expired at its deadline
  EXPECT_EQ(c.size(), 1u);
}

TEST(Serialization, RoundTripsAndRejectsForeignValues) {
  CachedResponse r{.content_type = "text/event-stream",
                   .body = "data: {\"x\":1}\n\ndata: [DONE]\n\n",
                   .created_ms = 1700000000123,
                   .prompt_tokens = 7,
                   .completion_tokens = 9};
  auto back = deserialize(serialize(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->content_type, r.content_type);
  EXPECT_EQ(back->body, r.body);
  EXPECT_EQ(back->created_ms, r.created_ms);
  EXPECT_EQ(back->prompt_tokens, 7);
  EXPECT_EQ(back->completion_tokens, 9);
  EXPECT_FALSE(deserialize("something else\n"));
  EXPECT_FALSE(deserialize("ondol-cache-v1\napplication/json\nx\n1\n2\n{}"));
}

}  // namespace
}  // namespace ondol::gateway::cache
