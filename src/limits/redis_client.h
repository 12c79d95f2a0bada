// A small Redis client: RESP2 over one TCP connection, Boost.Asio coroutines, bound to one
// executor (one client per I/O thread, like the HTTP connection pools; not thread-safe).
// Coroutines of that thread share the connection pipelined: each writes its command without
// waiting for earlier replies (commands queued meanwhile go out in one write), and a reader
// hands the replies, which Redis sends in order, to the callers in FIFO order.
//
// Every call is bounded by `command_timeout`, which covers waiting for a connection being
// opened, reconnecting and the reply: no caller hangs on a dead Redis. A call that times out
// with its reply outstanding closes the connection and fails every call outstanding on it (later
// replies could not be matched any more); a failed connection likewise. Reconnecting waits a
// doubling backoff, during which calls fail at once. A call that finds the connection closed by
// the server before any reply byte (Redis restarted) reconnects once.
#pragma once

#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange (GCC 12)

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "limits/resp.h"

namespace ondol::limits {

struct RedisConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string username;  // ACL user; empty: AUTH with the password alone
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECTed after connecting when not 0
  bool tls = false;      // rediss://: TLS, the server's certificate checked against tls_ca_file
                         // (or the system's CAs) and the host name, unless tls_verify is false
  std::string tls_ca_file;
  bool tls_verify = true;
  std::chrono::milliseconds command_timeout{100};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
};

// redis[s]://[[user]:password@]host[:port][/db][?ssl_ca_certs=PATH&ssl_cert_reqs=none]; the
// password may be percent-encoded. rediss:// is TLS; the query parameters (redis-py's names) set
// the CA file and turn verification off.
Result<RedisConfig> parse_redis_url(std::string_view url);

// A Lua script and its SHA-1, for EVALSHA.
struct LuaScript {
  explicit LuaScript(std::string source);
  std::string source;
  std::string sha1_hex;
};

class RedisClient {
 public:
  RedisClient(boost::asio::any_io_executor executor, RedisConfig config);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends one command and returns its reply. An error reply from the server ("-ERR ...") is a
  // successful Result holding a RespValue of type Error; a failed Result means Redis could not
  // be reached or did not answer in time.
  boost::asio::awaitable<Result<RespValue>> command(std::vector<std::string> args);

  // EVALSHA, and EVAL when the server answers NOSCRIPT (a restarted or flushed script cache),
  // within one command_timeout.
  boost::asio::awaitable<Result<RespValue>> eval(const LuaScript& script,
                                                 std::vector<std::string> keys,
                                                 std::vector<std::string> args);

  bool connected() const;
  const RedisConfig& config() const;
  // Connections opened so far (tests: reconnects happen).
  uint64_t num_connects() const;
  // Closes the connection; the next call reconnects (without waiting for a backoff).
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ondol::limits
