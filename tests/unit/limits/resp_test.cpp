// RESP2 encoding and parsing (partial input, bounds, nesting), Redis URLs and script hashes.
#include "limits/resp.h"
#include "limits/redis_client.h"

#include <gtest/gtest.h>

namespace ondol::limits {
namespace {

TEST(Resp, EncodesCommandsAsArraysOfBulkStrings) {
  EXPECT_EQ(encode_command({"SET", "k", "a\r\nb"}),
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
  EXPECT_EQ(encode_command({"PING", ""}), "*2\r\n$4\r\nPING\r\n$0\r\n\r\n");
}

TEST(Resp, ParsesEveryReplyType) {
  std::string wire =
      "*6\r\n+OK\r\n-NOSCRIPT No matching script\r\n:-42\r\n$5\r\nhe\r\nl\r\n$-1\r\n"
      "*2\r\n:1\r\n*0\r\n";
  RespValue v;
  size_t consumed = 0;
  ASSERT_EQ(parse_reply(wire + "+NEXT\r\n", consumed, v), ParseStatus::Complete);
  EXPECT_EQ(consumed, wire.size());
  ASSERT_EQ(v.type, RespType::Array);
  ASSERT_EQ(v.elements.size(), 6u);
  EXPECT_TRUE(v.elements[0].is_ok());
  EXPECT_TRUE(v.elements[1].is_error());
  EXPECT_EQ(v.elements[1].str, "NOSCRIPT No matching script");
  EXPECT_EQ(v.elements[2].integer, -42);
  EXPECT_EQ(v.elements[3].str, "he\r\nl");
  EXPECT_EQ(v.elements[4].type, RespType::Null);
  EXPECT_EQ(v.elements[5].elements[0].integer, 1);
  EXPECT_TRUE(v.elements[5].elements[1].elements.empty());
}

TEST(Resp, EveryPrefixOfAReplyIsIncomplete) {
  const std::string wire = "*3\r\n$3\r\nabc\r\n:7\r\n*1\r\n+x\r\n";
  for (size_t n = 0; n < wire.size(); ++n) {
    RespValue v;
    size_t consumed = 0;
    EXPECT_EQ(parse_reply(std::string_view(wire).substr(0, n), consumed, v),
              ParseStatus::Incomplete)
        << n;
  }
}

TEST(Resp, RejectsMalformedAndOversizedReplies) {
  for (std::string bad : {"?x\r\n", ":12a\r\n", "$-2\r\n", "$3\r\nabcd\r\n", "*-5\r\n",
                          "$999999999999\r\n", "*99999999\r\n", ":\r\n"}) {
    RespValue v;
    size_t consumed = 0;
    EXPECT_EQ(parse_reply(bad, consumed, v), ParseStatus::Invalid) << bad;
  }
  std::string deep;
  for (int i = 0; i < kMaxNesting + 2; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  RespValue v;
  size_t consumed = 0;
  EXPECT_EQ(parse_reply(deep, consumed, v), ParseStatus::Invalid);
}

TEST(RedisUrl, ParsesHostPortPasswordAndDatabase) {
  auto c = parse_redis_url("redis://:s%40cret@redis.internal:6380/3");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->host, "redis.internal");
  EXPECT_EQ(c->port, 6380);
  EXPECT_EQ(c->password, "s@cret");
  EXPECT_EQ(c->username, "");
  EXPECT_EQ(c->db, 3);

  auto user = parse_redis_url("redis://ondol:pw@127.0.0.1");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->username, "ondol");
  EXPECT_EQ(user->password, "pw");
  EXPECT_EQ(user->port, 6379);
  EXPECT_EQ(user->db, 0);

  auto v6 = parse_redis_url("redis://[::1]:7000/");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);

  EXPECT_FALSE(v6->tls);

  auto tls = parse_redis_url("rediss://:pw@cache.example:6380/2?ssl_ca_certs=%2Fetc%2Fca.pem");
  ASSERT_TRUE(tls.ok()) << tls.error().message;
  EXPECT_TRUE(tls->tls);
  EXPECT_TRUE(tls->tls_verify);
  EXPECT_EQ(tls->tls_ca_file, "/etc/ca.pem");
  EXPECT_EQ(tls->host, "cache.example");
  EXPECT_EQ(tls->port, 6380);
  EXPECT_EQ(tls->db, 2);
  auto unchecked = parse_redis_url("rediss://h?ssl_cert_reqs=none");
  ASSERT_TRUE(unchecked.ok());
  EXPECT_FALSE(unchecked->tls_verify);
  EXPECT_EQ(unchecked->port, 6379);
  EXPECT_FALSE(parse_redis_url("rediss://h?ssl_cert_reqs=maybe").ok());
  EXPECT_FALSE(parse_redis_url("redis://h/0?unknown=1").ok()) << "a typo is not ignored";
  EXPECT_FALSE(parse_redis_url("http://h:6379").ok());
  EXPECT_FALSE(parse_redis_url("redis://h:70000").ok());
  EXPECT_FALSE(parse_redis_url("redis://h:6379/x").ok());
  EXPECT_FALSE(parse_redis_url("redis://:%zz@h").ok());
  EXPECT_FALSE(parse_redis_url("redis://:6379").ok());
}

TEST(LuaScript, HashesTheSourceWithSha1) {
  EXPECT_EQ(LuaScript("").sha1_hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(LuaScript("return 1").sha1_hex, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

}  // namespace
}  // namespace ondol::limits
