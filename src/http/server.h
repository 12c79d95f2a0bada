// The HTTP/1.1 server: one io_context per I/O thread, each with its own acceptor on the same
// port (SO_REUSEPORT), so that the kernel spreads connections and a request never changes
// thread. Every connection has a header limit, a body limit, an idle timeout between requests
// and a read timeout for a request in progress.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "http/exchange.h"

namespace boost::asio {
class io_context;
}

namespace ondol::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 4000;  // 0: any free port; port() tells which
  int io_threads = 0;    // 0: one per core
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds read_timeout{30'000};  // to receive a whole request once begun
  std::chrono::milliseconds idle_timeout{75'000};  // between requests on a keep-alive connection
  std::chrono::milliseconds write_timeout{30'000}; // for one response write to a slow reader
  std::string server_name = "ondol";
};

using Handler = std::function<boost::asio::awaitable<void>(Exchange&)>;

// Called when the server itself rejects a request (limits, timeouts, malformed HTTP) so that
// the body follows the caller's error format: (status, message) -> body as JSON.
using ErrorBodyFn = std::function<std::string(int status, std::string_view message)>;

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler handler, ErrorBodyFn error_body);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds every thread's acceptor. After this, port() is the bound port.
  Status listen();
  uint16_t port() const;
  int io_threads() const;

  // Runs the I/O threads; returns when stop() has been called and they have finished.
  void run();
  // Closes the acceptors: no new connections. Keep-alive connections close after their
  // current request.
  void stop_accepting();
  // Stops every io_context (in-flight work is abandoned). Thread-safe.
  void stop();

  bool draining() const;
  int64_t active_requests() const;
  int64_t open_connections() const;
  // The first thread's context, for signals and timers owned by the application.
  boost::asio::io_context& main_context();

  struct Impl;  // public so that server.cpp's free functions may name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ondol::http
