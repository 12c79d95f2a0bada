// The upstream HTTP/1.1 client: keep-alive connection pools (one per I/O thread and upstream
// origin, so no locks), HTTPS through OpenSSL with certificate and host name verification, and
// bodies delivered piece by piece as they arrive so that streams are relayed without buffering.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "http/cancellation.h"
#include "http/exchange.h"
#include "http/url.h"

namespace ondol::http {

struct UpstreamTarget {
  Url url;
  std::string api_key;       // sent as "Authorization: Bearer ..." when not empty
  bool ssl_verify = true;
  std::string ssl_ca_file;   // extra trust anchors; empty: the system store
};

struct ClientRequest {
  std::string_view method = "POST";
  std::string_view path;     // appended to the target's path prefix: "/chat/completions"
  std::string_view body;
  std::string_view request_id;                  // forwarded as X-Request-ID
  std::chrono::milliseconds first_byte_timeout{600'000};  // connect + response headers
  std::chrono::milliseconds read_timeout{600'000};        // longest gap between body pieces
};

enum class ClientFailure {
  None,
  Connect,        // DNS, TCP or TLS failed: nothing was sent
  Timeout,        // first_byte_timeout or read_timeout elapsed
  Closed,         // the upstream closed before a complete response
  BadResponse,    // not HTTP, or a body over the limit
  Cancelled,      // the caller cancelled
};

const char* to_string(ClientFailure f);

struct ClientResponse {
  ClientFailure failure = ClientFailure::None;
  std::string failure_message;
  int status = 0;
  bool body_started = false;  // some of a 2xx body reached the sink
  std::string error_body;     // the body of a non-2xx response (bounded)
  std::string content_type;
  std::string ratelimit_remaining_requests;  // x-ratelimit-remaining-requests, if sent
  std::string ratelimit_remaining_tokens;    // x-ratelimit-remaining-tokens, if sent
};

// Receives a 2xx body. Returning false aborts the exchange (the connection is closed).
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual boost::asio::awaitable<bool> on_headers(const ClientResponse& response) = 0;
  virtual boost::asio::awaitable<bool> on_body(std::string_view piece) = 0;
};

// Sends one request on a pooled (or new) connection of the calling I/O thread. A stale pooled
// connection (closed by the upstream while idle) is retried once on a fresh one, transparently.
boost::asio::awaitable<ClientResponse> send_request(const UpstreamTarget& target,
                                                    const ClientRequest& request, BodySink& sink,
                                                    Cancellation& cancel);

// A small GET whose whole body is returned (health probes). Not pooled.
boost::asio::awaitable<ClientResponse> get_once(const UpstreamTarget& target, std::string_view path,
                                                std::chrono::milliseconds timeout,
                                                std::string* body_out);

// Idle pooled connections on this thread (for tests and metrics).
size_t idle_connections_on_this_thread();

// Closes this thread's idle pooled connections. Called when an I/O thread's loop ends, so no
// socket outlives the io_context it belongs to.
void close_idle_connections_on_this_thread();

}  // namespace ondol::http
