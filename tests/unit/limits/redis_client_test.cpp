// RedisClient against a real redis-server: commands and error replies, pipelined callers on one
// connection, AUTH and SELECT, the EVALSHA → EVAL fallback, bounded waits on a dead, frozen or
// busy server, reconnecting.
#include "limits/redis_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "co_run.h"
#include "redis_server.h"

namespace ondol::limits {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::co_run;
using testing::RedisServer;

RedisConfig config_for(const RedisServer& server) {
  RedisConfig c;
  c.host = "127.0.0.1";
  c.port = server.port();
  c.password = server.password();
  c.command_timeout = 1000ms;
  c.backoff_initial = 50ms;
  c.backoff_max = 200ms;
  return c;
}

Result<RespValue> run(asio::io_context& io, RedisClient& client, std::vector<std::string> args) {
  return co_run(io, client.command(std::move(args)));
}

int64_t eval_calls(asio::io_context& io, RedisClient& client) {
  auto info = run(io, client, {"INFO", "commandstats"});
  if (!info.ok()) return -1;
  const std::string& s = info->str;
  size_t at = s.find("cmdstat_eval:calls=");
  if (at == std::string::npos) return 0;
  return std::stoll(s.substr(at + std::string("cmdstat_eval:calls=").size()));
}

TEST(RedisClient, CommandsRepliesAndErrorReplies) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io.get_executor(), config_for(server));
  auto pong = run(io, client, {"PING"});
  ASSERT_TRUE(pong.ok()) << pong.error().message;
  EXPECT_EQ(pong->str, "PONG");
  EXPECT_TRUE(run(io, client, {"SET", "k", "v\r\n1"})->is_ok());
  EXPECT_EQ(run(io, client, {"GET", "k"})->str, "v\r\n1");
  EXPECT_EQ(run(io, client, {"GET", "missing"})->type, RespType::Null);
  auto bad = run(io, client, {"NOSUCHCOMMAND"});
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->is_error());
  EXPECT_EQ(client.num_connects(), 1u);
}

TEST(RedisClient, PipelinedCallersEachGetTheirOwnReply) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io.get_executor(), config_for(server));
  constexpr int kCallers = 200;
  std::vector<int64_t> counts(kCallers, -1);
  std::vector<std::string> echoes(kCallers);
  // All callers are started before any reply can arrive: their commands share the connection.
  for (int i = 0; i < kCallers; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          std::vector<std::string> incr = {"INCR", "n"};
          Result<RespValue> r = co_await client.command(std::move(incr));
          if (r.ok() && r->type == RespType::Integer) counts[i] = r->integer;
          std::vector<std::string> echo = {"ECHO", "caller " + std::to_string(i)};
          Result<RespValue> e = co_await client.command(std::move(echo));
          if (e.ok()) echoes[i] = e->str;
        },
        asio::detached);
  }
  io.run();
  for (int i = 0; i < kCallers; ++i) EXPECT_EQ(echoes[i], "caller " + std::to_string(i));
  // Every INCR was answered once, each caller with a different count: 1..200 in some order, and
  // in the order the callers wrote them (FIFO), since they were queued in that order.
  std::vector<int64_t> expected(kCallers);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(counts, expected);
  EXPECT_EQ(client.num_connects(), 1u);
}

TEST(RedisClient, TimeoutMidPipelineFailsOutstandingCallersAndRecovers) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisConfig c = config_for(server);
  c.command_timeout = 200ms;
  RedisClient client(io.get_executor(), c);
  ASSERT_TRUE(run(io, client, {"PING"}).ok());
  // BLPOP holds the connection for 1 s: the commands queued behind it get no reply in time.
  int failed = 0, answered = 0;
  auto start = Clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::vector<std::string> cmd = {"BLPOP", "empty-list", "1"};
        Result<RespValue> r = co_await client.command(std::move(cmd));
        if (r.ok())
          ++answered;
        else
          ++failed;
      },
      asio::detached);
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          std::vector<std::string> cmd = {"INCR", "behind"};
          Result<RespValue> r = co_await client.command(std::move(cmd));
          if (r.ok())
            ++answered;
          else
            ++failed;
        },
        asio::detached);
  }
  io.restart();
  io.run();
  auto took = Clock::now() - start;
  EXPECT_EQ(failed, 21);
  EXPECT_EQ(answered, 0);
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 200ms + 400ms);
  EXPECT_FALSE(client.connected());
  // After the backoff the client reconnects, and each reply goes to its own caller again: none
  // of the old connection's late replies (BLPOP's nil, the INCRs) is taken for a new one's.
  bool recovered = false;
  for (auto deadline = Clock::now() + 3s; Clock::now() < deadline && !recovered;) {
    auto r = run(io, client, {"ECHO", "fresh"});
    recovered = r.ok() && r->str == "fresh";
    if (!recovered) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(recovered);
  EXPECT_EQ(client.num_connects(), 2u);
  auto set = run(io, client, {"SET", "behind", "100"});
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->is_ok());
  auto incr = run(io, client, {"INCR", "behind"});
  ASSERT_TRUE(incr.ok());
  EXPECT_EQ(incr->integer, 101);
}

TEST(RedisClient, ConcurrentEvalsAfterAScriptFlushAllFallBackToEval) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io.get_executor(), config_for(server));
  LuaScript script("return redis.call('INCR', KEYS[1]) * 1000 + tonumber(ARGV[1])");
  std::vector<int64_t> got(50, -1);
  for (int i = 0; i < 50; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          std::vector<std::string> keys = {"k"};
          std::vector<std::string> args = {std::to_string(i)};
          Result<RespValue> r = co_await client.eval(script, std::move(keys), std::move(args));
          if (r.ok() && r->type == RespType::Integer) got[i] = r->integer;
        },
        asio::detached);
  }
  io.run();
  std::vector<int64_t> counts;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(got[i] % 1000, i) << "caller " << i << " got another caller's reply";
    counts.push_back(got[i] / 1000);
  }
  std::sort(counts.begin(), counts.end());
  std::vector<int64_t> expected(50);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(counts, expected) << "every script ran exactly once";
}

TEST(RedisClient, ConcurrentCoroutinesShareOneConnection) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io.get_executor(), config_for(server));
  int ok = 0;
  for (int i = 0; i < 50; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int j = 0; j < 20; ++j) {
            std::vector<std::string> cmd = {"INCR", "n"};
            Result<RespValue> r = co_await client.command(std::move(cmd));
            if (r.ok() && r->type == RespType::Integer) ++ok;
          }
        },
        asio::detached);
  }
  io.run();
  EXPECT_EQ(ok, 1000);
  EXPECT_EQ(run(io, client, {"GET", "n"})->str, "1000");
  EXPECT_EQ(client.num_connects(), 1u);
}

TEST(RedisClient, AuthWithPasswordAndSelectDatabase) {
  RedisServer server("s3cret pw");
  ASSERT_TRUE(server.start());
  asio::io_context io;

  RedisConfig anonymous = config_for(server);
  anonymous.password.clear();
  RedisClient noauth(io.get_executor(), anonymous);
  auto refused = run(io, noauth, {"PING"});
  ASSERT_TRUE(refused.ok());
  EXPECT_TRUE(refused->is_error());  // NOAUTH

  auto url =
      parse_redis_url("redis://:s3cret%20pw@127.0.0.1:" + std::to_string(server.port()) + "/2");
  ASSERT_TRUE(url.ok());
  RedisClient db2(io.get_executor(), *url);
  ASSERT_TRUE(run(io, db2, {"SET", "where", "db2"})->is_ok());
  RedisClient db0(io.get_executor(), config_for(server));
  EXPECT_EQ(run(io, db0, {"GET", "where"})->type, RespType::Null);
  EXPECT_EQ(run(io, db2, {"GET", "where"})->str, "db2");

  RedisConfig wrong = config_for(server);
  wrong.password = "not it";
  RedisClient bad(io.get_executor(), wrong);
  auto failed = run(io, bad, {"PING"});
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("AUTH"), std::string::npos) << failed.error().message;
  EXPECT_EQ(failed.error().message.find("not it"), std::string::npos);
}

TEST(RedisClient, EvalshaFallsBackToEvalAfterScriptFlush) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io.get_executor(), config_for(server));
  LuaScript script("return KEYS[1] .. ':' .. ARGV[1]");
  auto call = [&] { return co_run(io, client.eval(script, {"k"}, {"a"})); };
  auto first = call();  // empty script cache: NOSCRIPT, then EVAL
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->str, "k:a");
  EXPECT_EQ(eval_calls(io, client), 1);
  auto cached = call();  // EVALSHA alone
  EXPECT_EQ(cached->str, "k:a");
  EXPECT_EQ(eval_calls(io, client), 1);
  ASSERT_TRUE(run(io, client, {"SCRIPT", "FLUSH"})->is_ok());
  auto after_flush = call();
  ASSERT_TRUE(after_flush.ok());
  EXPECT_EQ(after_flush->str, "k:a");
  EXPECT_EQ(eval_calls(io, client), 2);
}

TEST(RedisClient, FrozenServerTimesOutWithinTheCommandTimeout) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisConfig c = config_for(server);
  c.command_timeout = 100ms;
  RedisClient client(io.get_executor(), c);
  ASSERT_TRUE(run(io, client, {"PING"}).ok());
  server.freeze();  // the port still accepts; nothing answers
  auto start = Clock::now();
  auto r = run(io, client, {"PING"});
  auto took = Clock::now() - start;
  EXPECT_FALSE(r.ok());
  EXPECT_GE(took, 90ms);
  EXPECT_LT(took, 100ms + 400ms);
  // A fresh connection to the frozen server times out too (connect succeeds, AUTH-less PING
  // never answers), and so do coroutines waiting for their turn.
  RedisClient fresh(io.get_executor(), c);
  int failed = 0;
  start = Clock::now();
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          std::vector<std::string> cmd = {"PING"};
          Result<RespValue> rr = co_await fresh.command(std::move(cmd));
          if (!rr.ok()) ++failed;
        },
        asio::detached);
  }
  io.restart();
  io.run();
  EXPECT_EQ(failed, 5);
  EXPECT_LT(Clock::now() - start, 100ms + 400ms);
  server.thaw();
}

TEST(RedisClient, StoppedServerFailsFastThenReconnectsAfterBackoff) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io.get_executor(), config_for(server));
  ASSERT_TRUE(run(io, client, {"SET", "k", "1"})->is_ok());
  server.stop();
  auto start = Clock::now();
  EXPECT_FALSE(run(io, client, {"PING"}).ok());
  auto during_backoff = run(io, client, {"PING"});
  ASSERT_FALSE(during_backoff.ok());
  EXPECT_NE(during_backoff.error().message.find("backoff"), std::string::npos);
  EXPECT_LT(Clock::now() - start, 500ms);
  ASSERT_TRUE(server.start());
  const uint64_t connects = client.num_connects();
  bool recovered = false;
  for (auto deadline = Clock::now() + 3s; Clock::now() < deadline && !recovered;) {
    auto r = run(io, client, {"PING"});
    recovered = r.ok() && r->str == "PONG";
    if (!recovered) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(recovered);
  EXPECT_EQ(client.num_connects(), connects + 1);
}

TEST(RedisClient, IdleConnectionClosedByARestartIsReplacedTransparently) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  asio::io_context io;
  RedisClient client(io.get_executor(), config_for(server));
  ASSERT_TRUE(run(io, client, {"PING"}).ok());
  server.stop();
  ASSERT_TRUE(server.start());
  auto r = run(io, client, {"PING"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->str, "PONG");
  EXPECT_EQ(client.num_connects(), 2u);
}

}  // namespace
}  // namespace ondol::limits
