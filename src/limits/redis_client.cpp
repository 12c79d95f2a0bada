#include "limits/redis_client.h"

#include <array>
#include <charconv>
#include <deque>

#include <fmt/format.h>
#include <openssl/sha.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl.hpp>

namespace ondol::limits {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
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

// One reply a caller waits for: completed by the connection's reader (FIFO), or failed when the
// connection goes away. `timer` runs until the caller's deadline; completing cancels it.
struct Pending {
  explicit Pending(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool done = false;
  bool ok = false;
  bool retryable = false;  // failed before any byte of its reply, on a reused connection
  bool reused = false;     // the connection existed when the call began
  RespValue value;
  std::string error;
};

// An open, set-up connection. Replies come back in the order the commands were written, so
// callers write without waiting for earlier replies and the reader hands each reply to the
// oldest outstanding caller. Read and write completions hold the connection alive; once
// `closed`, they touch nothing else (the client may be gone).
struct Connection : std::enable_shared_from_this<Connection> {
  explicit Connection(tcp::socket s) : plain(std::make_unique<tcp::socket>(std::move(s))) {}
  Connection(std::unique_ptr<TlsStream> s, std::shared_ptr<ssl::context> c)
      : tls(std::move(s)), tls_context(std::move(c)) {}

  template <class Buffer, class Handler>
  void read_some(const Buffer& buffer, Handler&& handler) {
    if (tls)
      tls->async_read_some(buffer, std::forward<Handler>(handler));
    else
      plain->async_read_some(buffer, std::forward<Handler>(handler));
  }
  template <class Buffer, class Handler>
  void write(const Buffer& buffer, Handler&& handler) {
    if (tls)
      asio::async_write(*tls, buffer, std::forward<Handler>(handler));
    else
      asio::async_write(*plain, buffer, std::forward<Handler>(handler));
  }
  // No TLS close_notify: the connection is dropped (a failure or the client going away).
  void close() {
    boost::system::error_code ec;
    if (tls)
      tls->next_layer().socket().close(ec);
    else
      plain->close(ec);
  }

  std::unique_ptr<tcp::socket> plain;  // one of plain and tls
  std::unique_ptr<TlsStream> tls;
  std::shared_ptr<ssl::context> tls_context;
  std::string rbuf;
  std::array<char, kReadChunkBytes> chunk{};
  std::string wbuf;     // commands not yet handed to the socket
  std::string writing;  // the batch being written
  bool write_in_flight = false;
  bool read_in_flight = false;  // reading only while replies are outstanding
  std::deque<std::shared_ptr<Pending>> pending;
  bool closed = false;
};

void complete(Pending& p) {
  p.done = true;
  p.timer.cancel();
}

}  // namespace

Result<RedisConfig> parse_redis_url(std::string_view url) {
  RedisConfig c;
  std::string_view rest;
  if (url.starts_with("rediss://")) {
    c.tls = true;
    rest = url.substr(9);
  } else if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else {
    return make_error("a Redis URL starts with redis:// or rediss://");
  }
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      size_t eq = pair.find('=');
      std::string_view name = pair.substr(0, eq);
      auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
      if (!value) return make_error("bad percent escape in the Redis URL's query");
      if (name == "ssl_ca_certs") {
        c.tls_ca_file = *value;
      } else if (name == "ssl_cert_reqs") {
        if (*value != "none" && *value != "required")
          return make_error("ssl_cert_reqs in the Redis URL is none or required");
        c.tls_verify = *value == "required";
      } else {
        return make_error(fmt::format("unknown parameter '{}' in the Redis URL", name));
      }
    }
  }
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

  // Completions still queued on the executor find the connection closed and touch nothing.
  ~Impl() {
    if (conn) {
      conn->closed = true;
      conn->close();
    }
  }

  struct RoundTrip {
    bool ok = false;
    RespValue value;
    std::string error;
    bool retryable = false;  // see Pending::retryable
  };

  void start_backoff() {
    next_connect = Clock::now() + backoff;
    backoff = std::min(backoff * 2, config.backoff_max);
  }

  // Closes the connection and fails every call outstanding on it. A call that received nothing
  // on a connection it reused may be retried once on a new connection (Redis restarted,
  // `retryable_reason`); when any other call fails, the next connect waits the backoff.
  void fail_connection(const std::shared_ptr<Connection>& c, const std::string& reason,
                       bool retryable_reason) {
    c->closed = true;
    c->close();
    bool any_final = false;
    bool head = true;
    for (const std::shared_ptr<Pending>& p : c->pending) {
      p->ok = false;
      p->error = reason;
      p->retryable = retryable_reason && p->reused && !(head && !c->rbuf.empty());
      head = false;
      any_final = any_final || !p->retryable;
      complete(*p);
    }
    c->pending.clear();
    if (conn == c) conn.reset();
    if (any_final) start_backoff();
  }

  // The connection's reader: hands each complete reply to the oldest outstanding call. It reads
  // only while calls are outstanding, so an idle client leaves its io_context without work.
  void start_read(const std::shared_ptr<Connection>& c) {
    if (c->closed || c->read_in_flight || c->pending.empty()) return;
    c->read_in_flight = true;
    c->read_some(asio::buffer(c->chunk), [this, c](boost::system::error_code ec, size_t n) {
      if (c->closed) return;
      c->read_in_flight = false;
      if (ec) {
        fail_connection(c, ec == asio::error::eof ? "connection closed by redis" : ec.message(),
                        true);
        return;
      }
      c->rbuf.append(c->chunk.data(), n);
      size_t at = 0;
      for (;;) {
        size_t consumed = 0;
        RespValue value;
        std::string_view rest = std::string_view(c->rbuf).substr(at);
        ParseStatus st = parse_reply(rest, consumed, value);
        if (st == ParseStatus::Incomplete) break;
        if (st == ParseStatus::Invalid || c->pending.empty()) {
          fail_connection(c, "malformed reply", false);
          return;
        }
        at += consumed;
        std::shared_ptr<Pending> p = std::move(c->pending.front());
        c->pending.pop_front();
        p->ok = true;
        p->value = std::move(value);
        complete(*p);
      }
      c->rbuf.erase(0, at);
      if (c->rbuf.size() > kMaxBufferedBytes) {
        fail_connection(c, "malformed reply", false);
        return;
      }
      start_read(c);
    });
  }

  // Writes what callers queued, in one write per batch: commands queued while a write is in
  // flight go out together in the next.
  void start_write(const std::shared_ptr<Connection>& c) {
    if (c->closed || c->write_in_flight || c->wbuf.empty()) return;
    c->write_in_flight = true;
    c->writing.clear();
    std::swap(c->writing, c->wbuf);
    c->write(asio::buffer(c->writing), [this, c](boost::system::error_code ec, size_t) {
      if (c->closed) return;
      c->write_in_flight = false;
      if (ec) {
        fail_connection(c, ec.message(), true);
        return;
      }
      start_write(c);
    });
  }

  // One command and its reply on a connection being set up (AUTH, SELECT), before any caller
  // can use it. `stream` is the tcp_stream or the TLS stream over it.
  template <class Stream>
  asio::awaitable<RoundTrip> setup_round_trip(Stream& stream, std::string& rbuf,
                                              const std::string& wire, Clock::time_point deadline) {
    RoundTrip out;
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_at(deadline);
    co_await asio::async_write(stream, asio::buffer(wire),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.error = ec == beast::error::timeout ? "timed out" : ec.message();
      co_return out;
    }
    std::vector<char> buf(4096);
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
      size_t n = co_await stream.async_read_some(asio::buffer(buf),
                                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.error = ec == beast::error::timeout ? "timed out" : ec.message();
        co_return out;
      }
      rbuf.append(buf.data(), n);
    }
  }

  // Connects, authenticates and selects the database; on success the connection is `conn`.
  asio::awaitable<Status> open(Clock::time_point deadline) {
    beast::tcp_stream stream(executor);
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
        start_backoff();
        co_return make_error(fmt::format("cannot resolve {}: {}", config.host, reason));
      }
    }
    stream.expires_at(deadline);
    co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      std::string reason = ec == beast::error::timeout ? "timed out" : ec.message();
      start_backoff();
      co_return make_error(
          fmt::format("cannot connect to redis at {}:{}: {}", config.host, config.port, reason));
    }
    stream.socket().set_option(tcp::no_delay(true), ec);
    ++connects;
    if (!config.tls) {
      Status st = co_await set_up(stream, deadline);
      if (!st) {
        co_return st;
      }
      stream.expires_never();
      conn = std::make_shared<Connection>(stream.release_socket());
      backoff = config.backoff_initial;
      co_return Ok{};
    }
    Result<std::shared_ptr<ssl::context>> ctx = tls_context();
    if (!ctx) {
      start_backoff();
      co_return ctx.error();
    }
    auto tls = std::make_unique<TlsStream>(std::move(stream), **ctx);
    boost::system::error_code not_ip;
    asio::ip::make_address(config.host, not_ip);
    if (not_ip) SSL_set_tlsext_host_name(tls->native_handle(), config.host.c_str());  // SNI
    if (config.tls_verify) tls->set_verify_callback(ssl::host_name_verification(config.host));
    beast::get_lowest_layer(*tls).expires_at(deadline);
    co_await tls->async_handshake(ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      std::string reason = ec == beast::error::timeout ? "timed out" : ec.message();
      start_backoff();
      co_return make_error(fmt::format("TLS handshake with redis at {}:{} failed: {}", config.host,
                                       config.port, reason));
    }
    Status st = co_await set_up(*tls, deadline);
    if (!st) {
      co_return st;
    }
    beast::get_lowest_layer(*tls).expires_never();
    conn = std::make_shared<Connection>(std::move(tls), *ctx);
    backoff = config.backoff_initial;
    co_return Ok{};
  }

  // AUTH and SELECT on a new connection, as configured.
  template <class Stream>
  asio::awaitable<Status> set_up(Stream& stream, Clock::time_point deadline) {
    std::vector<std::vector<std::string>> setup;
    if (!config.password.empty()) {
      if (config.username.empty())
        setup.push_back({"AUTH", config.password});
      else
        setup.push_back({"AUTH", config.username, config.password});
    }
    if (config.db != 0) setup.push_back({"SELECT", std::to_string(config.db)});
    std::string rbuf;
    for (const auto& cmd : setup) {
      std::string wire = encode_command(cmd);
      RoundTrip rt = co_await setup_round_trip(stream, rbuf, wire, deadline);
      if (!rt.ok || !rt.value.is_ok()) {
        // Never echo the AUTH arguments; the server's message names no secret.
        std::string reason = rt.ok ? rt.value.str : rt.error;
        start_backoff();
        co_return make_error(fmt::format("redis {} failed: {}", cmd[0], reason));
      }
    }
    co_return Ok{};
  }

  // The TLS settings of this client (rediss://), made on first use.
  Result<std::shared_ptr<ssl::context>> tls_context() {
    if (tls_ctx) return tls_ctx;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    if (!config.tls_ca_file.empty())
      ctx->load_verify_file(config.tls_ca_file, ec);
    else
      ctx->set_default_verify_paths(ec);
    if (ec)
      return make_error(fmt::format("cannot load the CA certificates for redis ({}): {}",
                                    config.tls_ca_file.empty() ? "system" : config.tls_ca_file,
                                    ec.message()));
    ctx->set_verify_mode(config.tls_verify ? ssl::verify_peer : ssl::verify_none);
    tls_ctx = ctx;
    return ctx;
  }

  // Makes sure there is a connection, opening one at a time: callers that arrive while one is
  // being opened wait for it (until their deadline). Fails at once during the backoff.
  asio::awaitable<Status> connect(Clock::time_point deadline) {
    while (connecting) {
      if (Clock::now() >= deadline) {
        co_return make_error("redis command timed out waiting for the connection");
      }
      auto timer = std::make_shared<asio::steady_timer>(executor);
      timer->expires_at(deadline);
      connect_waiters.push_back(timer);
      boost::system::error_code ec;
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      std::erase(connect_waiters, timer);
    }
    if (conn) co_return Ok{};
    if (Clock::now() < next_connect) {
      co_return make_error("redis unavailable (reconnect backoff)");
    }
    connecting = true;
    Status st = co_await open(deadline);
    connecting = false;
    for (const auto& w : connect_waiters) w->cancel();
    co_return st;
  }

  // Queues one command on the connection and waits for its reply until `deadline`. A call that
  // times out with its reply outstanding closes the connection and fails every call on it:
  // replies still to come could no longer be matched to their callers.
  asio::awaitable<RoundTrip> call(const std::string& wire, bool reused,
                                  Clock::time_point deadline) {
    RoundTrip out;
    std::shared_ptr<Connection> c = conn;
    if (!c) {
      out.error = "connection closed";
      co_return out;
    }
    auto p = std::make_shared<Pending>(executor);
    p->reused = reused;
    p->timer.expires_at(deadline);
    c->pending.push_back(p);
    c->wbuf += wire;
    start_write(c);
    start_read(c);
    boost::system::error_code ec;
    co_await p->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!p->done) {
      if (!c->closed) fail_connection(c, "timed out", false);
      p->done = true;
      p->ok = false;
      p->retryable = false;
      p->error = "timed out";
    }
    out.ok = p->ok;
    out.value = std::move(p->value);
    out.error = std::move(p->error);
    out.retryable = p->retryable;
    co_return out;
  }

  // One command, reconnecting once if a reused connection turns out to have been closed by the
  // server before it answered.
  asio::awaitable<Result<RespValue>> run(const std::string& wire, Clock::time_point deadline) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = conn != nullptr;
      if (!conn || connecting) {  // the common case, an open connection, needs no coroutine
        Status st = co_await connect(deadline);
        if (!st) {
          co_return st.error();
        }
      }
      RoundTrip rt = co_await call(wire, reused, deadline);
      if (rt.ok) {
        co_return std::move(rt.value);
      }
      if (rt.retryable && attempt == 0 && Clock::now() < deadline) continue;
      co_return make_error("redis command failed: " + rt.error);
    }
    co_return make_error("redis command failed");
  }

  asio::any_io_executor executor;
  RedisConfig config;
  std::shared_ptr<Connection> conn;  // null: none open
  std::shared_ptr<ssl::context> tls_ctx;  // rediss://: made on the first connect
  bool connecting = false;
  std::deque<std::shared_ptr<asio::steady_timer>> connect_waiters;
  Clock::time_point next_connect{};
  std::chrono::milliseconds backoff;
  uint64_t connects = 0;
};

RedisClient::RedisClient(asio::any_io_executor executor, RedisConfig config)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(config))) {}

RedisClient::~RedisClient() = default;

asio::awaitable<Result<RespValue>> RedisClient::command(std::vector<std::string> args) {
  const Clock::time_point deadline = Clock::now() + impl_->config.command_timeout;
  std::string wire = encode_command(args);
  Result<RespValue> reply = co_await impl_->run(wire, deadline);
  co_return reply;
}

asio::awaitable<Result<RespValue>> RedisClient::eval(const LuaScript& script,
                                                     std::vector<std::string> keys,
                                                     std::vector<std::string> args) {
  const Clock::time_point deadline = Clock::now() + impl_->config.command_timeout;
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
  return impl_->conn != nullptr;
}
const RedisConfig& RedisClient::config() const {
  return impl_->config;
}
uint64_t RedisClient::num_connects() const {
  return impl_->connects;
}

void RedisClient::close() {
  if (impl_->conn) {
    std::shared_ptr<Connection> c = impl_->conn;
    impl_->fail_connection(c, "connection closed", false);
  }
  impl_->next_connect = {};
}

}  // namespace ondol::limits
