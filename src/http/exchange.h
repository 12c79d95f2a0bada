// One request/response exchange as a handler sees it: the parsed request, and either a whole
// response or a stream of chunks. I/O types stay in server.cpp; handlers are written against
// this interface so that they can be tested and read without Beast in view.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange (Boost 1.74 + GCC 12)

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ondol::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual std::string_view method() const = 0;
  virtual std::string_view target() const = 0;  // path and query as sent
  virtual std::string_view path() const = 0;    // without the query
  virtual std::string_view query() const = 0;   // after '?', or empty
  // Empty when absent. Case-insensitive name.
  virtual std::string_view header(std::string_view name) const = 0;
  virtual const std::string& body() const = 0;
  virtual std::string_view remote_address() const = 0;
  // Seconds since the request's first header byte was read (monotonic clock).
  virtual double elapsed_seconds() const = 0;

  // Headers added to whatever response is sent next (X-Request-ID, rate-limit headers).
  virtual void add_response_header(std::string name, std::string value) = 0;

  // A whole response. Sent at most once per exchange.
  virtual boost::asio::awaitable<void> respond(int status, std::string_view content_type,
                                               std::string body) = 0;

  // A chunked response whose body is written piece by piece as it becomes available (SSE).
  // Each returns false once the client is gone; the caller stops and cleans up.
  virtual boost::asio::awaitable<bool> begin_stream(int status, std::string_view content_type) = 0;
  virtual boost::asio::awaitable<bool> write(std::string_view chunk) = 0;
  virtual boost::asio::awaitable<void> end_stream() = 0;

  // Drops the connection at once, mid-response if need be (fault injection, fatal relay errors).
  virtual void abort() = 0;

  virtual bool responded() const = 0;  // headers have gone out
  virtual int response_status() const = 0;

  // Calls `callback` once, on the exchange's thread, if the client closes its connection before
  // the exchange ends; so that a long upstream call is cancelled at once, not at its next write.
  virtual void on_client_gone(std::function<void()> callback) = 0;
  virtual bool client_gone() const = 0;
};

}  // namespace ondol::http
