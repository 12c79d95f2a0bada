#include "http/url.h"

#include <gtest/gtest.h>

namespace ondol::http {
namespace {

TEST(ParseUrl, HttpWithPortAndPrefix) {
  auto u = parse_url("http://127.0.0.1:8001/v1/");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8001");
  EXPECT_EQ(u->path_prefix, "/v1");  // trailing slash dropped
  EXPECT_EQ(u->origin(), "http://127.0.0.1:8001");
}

TEST(ParseUrl, DefaultPortsFromScheme) {
  auto a = parse_url("https://api.example.com/v1");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->port, "443");
  auto b = parse_url("http://localhost");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, "80");
  EXPECT_EQ(b->path_prefix, "");
}

TEST(ParseUrl, Ipv6Literal) {
  auto u = parse_url("http://[::1]:9000/x");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "9000");
  EXPECT_EQ(u->path_prefix, "/x");
}

TEST(ParseUrl, Rejections) {
  for (const char* bad : {"ftp://x", "127.0.0.1:80", "http://", "http://:80", "http://h:0",
                          "http://h:70000", "http://h:12ab", "http://user:pw@h/", "http://[::1"}) {
    auto u = parse_url(bad);
    EXPECT_FALSE(u.ok()) << bad;
  }
}

}  // namespace
}  // namespace ondol::http
