#include "openai/error.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace ondol::openai {
namespace {

TEST(ApiError, BodyHasTheOpenAIShape) {
  auto e = invalid_request("bad \"x\"", "temperature");
  rapidjson::Document d;
  d.Parse(e.to_json().c_str());
  ASSERT_FALSE(d.HasParseError());
  const auto& err = d["error"];
  EXPECT_STREQ(err["message"].GetString(), "bad \"x\"");
  EXPECT_STREQ(err["type"].GetString(), "invalid_request_error");
  EXPECT_STREQ(err["param"].GetString(), "temperature");
  EXPECT_TRUE(err["code"].IsNull());
  EXPECT_EQ(e.status, 400);
}

TEST(ApiError, StatusesAndClasses) {
  EXPECT_EQ(model_not_found("m").status, 404);
  EXPECT_EQ(authentication_error("x").status, 401);
  EXPECT_EQ(payload_too_large(10).status, 413);
  EXPECT_EQ(upstream_timeout("x").status, 504);
  EXPECT_EQ(bad_gateway("x").status, 502);
  EXPECT_EQ(service_unavailable("x").status, 503);
  EXPECT_EQ(rate_limited("x").status, 429);
  EXPECT_EQ(exception_class_for_status(429), "RateLimitError");
  EXPECT_EQ(exception_class_for_status(599), "InternalServerError");
}

}  // namespace
}  // namespace ondol::openai
