#include "limits/redis_client.h"

#include <array>
#include <charconv>
#include <deque>

#include <fmt/format.h>
#include <openssl/sha.h>
#include <boost/asio.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace ondol::limits {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kReadChunkBytes = 16 * 1024;
constexpr size_t kMaxBufferedBytes = kMaxBulkBytes + 1024;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return make_error("bad percent escape");
    int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return make_error("bad percent escape");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

Result<RedisConfig> parse_redis_url(std::string_view url) {
  RedisConfig c;
  constexpr std::string_view kScheme = "redis://";
  if (url.starts_with("rediss://")) return make_error("rediss:// (TLS to Redis) is not supported");
  if (!url.starts_with(kScheme)) return make_error("a Redis URL starts with redis://");
  std::string_view rest = url.substr(kScheme.size());
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    std::string_view user =
        colon == std::string_view::npos ? std::string_view{} : userinfo.substr(0, colon);
    std::string_view pass = colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
    auto u = percent_decode(user);
    auto p = percent_decode(pass);
    if (!u || !p) return make_error("bad percent escape in the Redis URL's credentials");
    c.username = *u;
    c.password = *p;
  }
  std::string_view hostport = rest;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (size_t q = db.find('?'); q != std::string_view::npos) db = db.substr(0, q);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), c.db);
      if (ec != std::errc() || p != db.data() + db.size() || c.db < 0)
        return make_error(fmt::format("bad database number '{}' in the Redis URL", db));
    }
  }
  std::string_view host = hostport;
  if (hostport.starts_with('[')) {  // [::1]:6379
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return make_error("bad IPv6 host in the Redis URL");
    host = hostport.substr(1, close - 1);
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && hostport[0] != ':') return make_error("bad Redis URL");
    hostport = hostport.empty() ? hostport : hostport.substr(1);
  } else if (size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    hostport = hostport.substr(colon + 1);
  } else {
    hostport = {};
  }
  if (!hostport.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(hostport.data(), hostport.data() + hostport.size(), port);
    if (ec != std::errc() || p != hostport.data() + hostport.size() || port == 0 || port > 65535)
      return make_error(fmt::format("bad port '{}' in the Redis URL", hostport));
    c.port = static_cast<uint16_t>(port);
  }
  if (host.empty()) return make_error("the Redis URL has no host");
  c.host.assign(host);
  return c;
}

LuaScript::LuaScript(std::string src) : source(std::move(src)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source.data()), source.size(), digest);
  sha1_hex.reserve(2 * SHA_DIGEST_LENGTH);
  for (unsigned char b : digest) sha1_hex += fmt::format("{:02x}", b);
}

struct RedisClient::Impl {
  Impl(asio::any_io_executor ex, RedisConfig c)
      : executor(std::move(ex)), config(std::move(c)), backoff(config.backoff_initial) {}

  struct RoundTrip {
    bool ok = false;
    RespValue value;
    std::string error;
    bool nothing_received = false;  // failed before any reply byte
  };

  // Waits (FIFO, until `deadline`) for this client's connection to be free.
  asio::awaitable<bool> take_turn(Clock::time_point deadline) {
    while (busy) {
      if (Clock::now() >= deadline) {
        co_return false;
      }
      auto timer = std::make_shared<asio::steady_timer>(executor);
      timer->expires_at(deadline);
      waiters.push_back(timer);
      boost::system::error_code ec;
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      std::erase(waiters, timer);
    }
    busy = true;
    co_return true;
  }

  void release_turn() {
    busy = false;
    if (!waiters.empty()) {
      waiters.front()->cancel();
      waiters.pop_front();
    }
  }

  void drop_connection() {
    if (stream) {
      boost::system::error_code ec;
      stream->socket().close(ec);
    }
    stream.reset();
    rbuf.clear();
  }

  void start_backoff() {
    next_connect = Clock::now() + backoff;
    backoff = std::min(backoff * 2, config.backoff_max);
  }

  asio::awaitable<RoundTrip> round_trip(const std::string& wire, Clock::time_point deadline) {
    RoundTrip out;
    boost::system::error_code ec;
    stream->expires_at(deadline);
    co_await asio::async_write(*stream, asio::buffer(wire),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.nothing_received = true;
      out.error = ec == beast::error::timeout ? "timed out" : ec.message();
      co_return out;
    }
    bool received = false;
    for (;;) {
      size_t consumed = 0;
      ParseStatus st = parse_reply(rbuf, consumed, out.value);
      if (st == ParseStatus::Complete) {
        rbuf.erase(0, consumed);
        out.ok = true;
        co_return out;
      }
      if (st == ParseStatus::Invalid || rbuf.size() > kMaxBufferedBytes) {
        out.error = "malformed reply";
        co_return out;
      }
      size_t n = co_await stream->async_read_some(asio::buffer(chunk),
                                                  asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.nothing_received = !received;
        out.error = ec == beast::error::timeout ? "timed out" : ec.message();
        co_return out;
      }
      received = true;
      rbuf.append(chunk.data(), n);
    }
  }

  asio::awaitable<Status> connect(Clock::time_point deadline) {
    if (stream) co_return Ok{};
    if (Clock::now() < next_connect) {
      co_return make_error("redis unavailable (reconnect backoff)");
    }
    stream = std::make_unique<beast::tcp_stream>(executor);
    rbuf.clear();
    boost::system::error_code ec;
    std::vector<tcp::endpoint> endpoints;
    asio::ip::address addr = asio::ip::make_address(config.host, ec);
    if (!ec) {
      endpoints.emplace_back(addr, config.port);
    } else {
      tcp::resolver resolver(executor);
      asio::steady_timer timer(executor);
      timer.expires_at(deadline);
      timer.async_wait([&resolver](boost::system::error_code e) {
        if (!e) resolver.cancel();
      });
      std::string port = std::to_string(config.port);
      auto results = co_await resolver.async_resolve(config.host, port,
                                                     asio::redirect_error(asio::use_awaitable, ec));
      timer.cancel();
      for (const auto& r : results) endpoints.push_back(r.endpoint());
      if (ec || endpoints.empty()) {
        std::string reason = ec ? ec.message() : "no address";
        drop_connection();
        start_backoff();
        co_return make_error(fmt::format("cannot resolve {}: {}", config.host, reason));
      }
    }
    stream->expires_at(deadline);
    co_await stream->async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      std::string reason = ec == beast::error::timeout ? "timed out" : ec.message();
      drop_connection();
      start_backoff();
      co_return make_error(
          fmt::format("cannot connect to redis at {}:{}: {}", config.host, config.port, reason));
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    ++connects;
    std::vector<std::vector<std::string>> setup;
    if (!config.password.empty()) {
      if (config.username.empty())
        setup.push_back({"AUTH", config.password});
      else
        setup.push_back({"AUTH", config.username, config.password});
    }
    if (config.db != 0) setup.push_back({"SELECT", std::to_string(config.db)});
    for (const auto& cmd : setup) {
      std::string wire = encode_command(cmd);
      RoundTrip rt = co_await round_trip(wire, deadline);
      if (!rt.ok || !rt.value.is_ok()) {
        // Never echo the AUTH arguments; the server's message names no secret.
        std::string reason = rt.ok ? rt.value.str : rt.error;
        drop_connection();
        start_backoff();
        co_return make_error(fmt::format("redis {} failed: {}", cmd[0], reason));
      }
    }
    backoff = config.backoff_initial;
    co_return Ok{};
  }

  // One command on the connection, reconnecting once if a reused connection turns out to have
  // been closed by the server. The caller holds the turn.
  asio::awaitable<Result<RespValue>> run(const std::string& wire, Clock::time_point deadline) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = stream != nullptr;
      Status st = co_await connect(deadline);
      if (!st) {
        co_return st.error();
      }
      RoundTrip rt = co_await round_trip(wire, deadline);
      if (rt.ok) {
        co_return std::move(rt.value);
      }
      drop_connection();
      const bool stale = reused && rt.nothing_received && rt.error != "timed out";
      if (stale && Clock::now() < deadline) continue;
      start_backoff();
      co_return make_error("redis command failed: " + rt.error);
    }
    co_return make_error("redis command failed");
  }

  // Holds the turn for one call and passes it on when the call ends, however it ends.
  class TurnGuard {
   public:
    explicit TurnGuard(Impl* impl) : impl_(impl) {}
    ~TurnGuard() { impl_->release_turn(); }
    TurnGuard(const TurnGuard&) = delete;
    TurnGuard& operator=(const TurnGuard&) = delete;

   private:
    Impl* impl_;
  };

  asio::any_io_executor executor;
  RedisConfig config;
  std::unique_ptr<beast::tcp_stream> stream;
  std::string rbuf;
  std::array<char, kReadChunkBytes> chunk{};
  bool busy = false;
  std::deque<std::shared_ptr<asio::steady_timer>> waiters;
  Clock::time_point next_connect{};
  std::chrono::milliseconds backoff;
  uint64_t connects = 0;
};

RedisClient::RedisClient(asio::any_io_executor executor, RedisConfig config)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(config))) {}

RedisClient::~RedisClient() = default;

asio::awaitable<Result<RespValue>> RedisClient::command(std::vector<std::string> args) {
  const Clock::time_point deadline = Clock::now() + impl_->config.command_timeout;
  const bool got_turn = co_await impl_->take_turn(deadline);
  if (!got_turn) {
    if (!impl_->busy && !impl_->waiters.empty()) impl_->release_turn();
    co_return make_error("redis command timed out waiting for the connection");
  }
  Impl::TurnGuard turn(impl_.get());
  std::string wire = encode_command(args);
  Result<RespValue> reply = co_await impl_->run(wire, deadline);
  co_return reply;
}

asio::awaitable<Result<RespValue>> RedisClient::eval(const LuaScript& script,
                                                     std::vector<std::string> keys,
                                                     std::vector<std::string> args) {
  const Clock::time_point deadline = Clock::now() + impl_->config.command_timeout;
  const bool got_turn = co_await impl_->take_turn(deadline);
  if (!got_turn) {
    if (!impl_->busy && !impl_->waiters.empty()) impl_->release_turn();
    co_return make_error("redis command timed out waiting for the connection");
  }
  Impl::TurnGuard turn(impl_.get());
  std::vector<std::string> cmd;
  cmd.reserve(3 + keys.size() + args.size());
  cmd.push_back("EVALSHA");
  cmd.push_back(script.sha1_hex);
  cmd.push_back(std::to_string(keys.size()));
  for (std::string& k : keys) cmd.push_back(std::move(k));
  for (std::string& a : args) cmd.push_back(std::move(a));
  std::string wire = encode_command(cmd);
  Result<RespValue> reply = co_await impl_->run(wire, deadline);
  if (!reply.ok() || !reply->is_error() || !reply->str.starts_with("NOSCRIPT")) {
    co_return reply;
  }
  cmd[0] = "EVAL";
  cmd[1] = script.source;
  wire = encode_command(cmd);
  Result<RespValue> second = co_await impl_->run(wire, deadline);
  co_return second;
}

bool RedisClient::connected() const {
  return impl_->stream != nullptr;
}
const RedisConfig& RedisClient::config() const {
  return impl_->config;
}
uint64_t RedisClient::num_connects() const {
  return impl_->connects;
}

void RedisClient::close() {
  impl_->drop_connection();
  impl_->next_connect = {};
}

}  // namespace ondol::limits
