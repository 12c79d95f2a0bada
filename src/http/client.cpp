#include "http/client.h"
#include "http/deadline.h"

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>

#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ondol::http {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr size_t kMaxIdlePerOrigin = 256;
constexpr size_t kMaxErrorBodyBytes = 64 * 1024;
constexpr size_t kReadPieceBytes = 16 * 1024;

struct Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

using ConnectionPtr = std::unique_ptr<Connection>;

// Idle connections of this I/O thread, keyed by origin + TLS settings.
std::unordered_map<std::string, std::vector<ConnectionPtr>>& thread_pool() {
  thread_local std::unordered_map<std::string, std::vector<ConnectionPtr>> pool;
  return pool;
}

std::string pool_key(const UpstreamTarget& t) {
  return fmt::format("{}|{}|{}", t.url.origin(), t.ssl_verify ? 1 : 0, t.ssl_ca_file);
}

// TLS contexts are shared by all threads (OpenSSL contexts are safe to share once set up).
Result<std::shared_ptr<ssl::context>> tls_context(const UpstreamTarget& t) {
  static std::mutex mu;
  static std::map<std::pair<bool, std::string>, std::shared_ptr<ssl::context>> contexts;
  std::lock_guard lock(mu);
  auto key = std::make_pair(t.ssl_verify, t.ssl_ca_file);
  if (auto it = contexts.find(key); it != contexts.end()) return it->second;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_default_verify_paths(ec);
  if (!t.ssl_ca_file.empty()) {
    ctx->load_verify_file(t.ssl_ca_file, ec);
    if (ec) return make_error("cannot load ssl_ca_file '" + t.ssl_ca_file + "': " + ec.message());
  }
  ctx->set_verify_mode(t.ssl_verify ? ssl::verify_peer : ssl::verify_none);
  contexts.emplace(key, ctx);
  return ctx;
}

ConnectionPtr take_idle(const std::string& key) {
  auto& pool = thread_pool();
  auto it = pool.find(key);
  if (it == pool.end()) return nullptr;
  while (!it->second.empty()) {
    ConnectionPtr c = std::move(it->second.back());
    it->second.pop_back();
    if (c->lowest().socket().is_open()) return c;
  }
  return nullptr;
}

void give_back(const std::string& key, ConnectionPtr c) {
  auto& idle = thread_pool()[key];
  if (idle.size() < kMaxIdlePerOrigin) idle.push_back(std::move(c));
}

asio::awaitable<Result<ConnectionPtr>> connect(const UpstreamTarget& t,
                                               std::chrono::milliseconds timeout,
                                               Cancellation& cancel) {
  auto executor = co_await asio::this_coro::executor;
  auto conn = std::make_unique<Connection>();
  std::shared_ptr<ssl::context> ctx;
  if (t.url.tls) {
    auto c = tls_context(t);
    if (!c) co_return c.error();
    ctx = *c;
    conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor, *ctx);
  } else {
    conn->plain = std::make_unique<beast::tcp_stream>(executor);
  }
  auto& lowest = conn->lowest();
  tcp::resolver resolver(executor);
  boost::system::error_code ec;
  cancel.set_handler([&] {
    resolver.cancel();
    lowest.cancel();
  });
  auto results = co_await resolver.async_resolve(t.url.host, t.url.port,
                                                 asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    cancel.clear_handler();
    co_return make_error(fmt::format("cannot resolve {}: {}", t.url.host, ec.message()));
  }
  lowest.expires_after(timeout);
  co_await lowest.async_connect(results, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) lowest.socket().set_option(tcp::no_delay(true), ec);
  if (!ec && conn->tls) {
    if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), t.url.host.c_str())) {
      ec = boost::system::error_code(static_cast<int>(::ERR_get_error()),
                                     asio::error::get_ssl_category());
    }
    if (!ec && t.ssl_verify) conn->tls->set_verify_callback(ssl::host_name_verification(t.url.host));
    if (!ec)
      co_await conn->tls->async_handshake(ssl::stream_base::client,
                                          asio::redirect_error(asio::use_awaitable, ec));
  }
  cancel.clear_handler();
  if (ec) {
    co_return make_error(fmt::format("cannot connect to {}: {}", t.url.origin(),
                                     ec == beast::error::timeout ? "timed out" : ec.message()));
  }
  co_return std::move(conn);
}

ClientFailure classify(const boost::system::error_code& ec, const Cancellation& cancel) {
  if (cancel.cancelled()) return ClientFailure::Cancelled;
  if (ec == beast::error::timeout) return ClientFailure::Timeout;
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
      ec == bhttp::error::partial_message || ec == ssl::error::stream_truncated)
    return ClientFailure::Closed;
  return ClientFailure::Closed;
}

void copy_header(const bhttp::response_parser<bhttp::buffer_body>& p, std::string_view name,
                 std::string& out) {
  auto& h = p.get();
  auto it = h.find(beast::string_view(name.data(), name.size()));
  if (it != h.end()) out.assign(it->value().data(), it->value().size());
}

// One request/response on an open connection. `reusable` is set when the connection may go
// back to the pool; `nothing_received` when it failed before any response byte (stale).
template <typename Stream>
asio::awaitable<ClientResponse> exchange_on(Stream& stream, Connection& conn,
                                            const UpstreamTarget& t, const ClientRequest& r,
                                            BodySink& sink, Cancellation& cancel, bool& reusable,
                                            bool& nothing_received) {
  ClientResponse out;
  reusable = false;
  nothing_received = false;
  auto& lowest = conn.lowest();
  cancel.set_handler([&lowest] { lowest.cancel(); });

  bhttp::request<bhttp::string_body> req;
  req.method_string(beast::string_view(r.method.data(), r.method.size()));
  std::string target = t.url.path_prefix;
  target.append(r.path);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, t.url.host);
  req.set(bhttp::field::user_agent, "ondol/" ONDOL_VERSION);
  req.set(bhttp::field::accept, "application/json, text/event-stream");
  if (!r.body.empty() || r.method == "POST") {
    req.set(bhttp::field::content_type, "application/json");
    req.body().assign(r.body.data(), r.body.size());
  }
  if (!t.api_key.empty()) req.set(bhttp::field::authorization, "Bearer " + t.api_key);
  if (!r.request_id.empty())
    req.set("X-Request-ID", beast::string_view(r.request_id.data(), r.request_id.size()));
  req.keep_alive(true);
  req.prepare_payload();

  boost::system::error_code ec;
  lowest.expires_after(r.first_byte_timeout);
  co_await bhttp::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    cancel.clear_handler();
    nothing_received = true;
    out.failure = classify(ec, cancel);
    out.failure_message = "sending the request failed: " + ec.message();
    co_return out;
  }

  bhttp::response_parser<bhttp::buffer_body> parser;
  // Parse every chunk already received in one go, so a burst of SSE events becomes one piece
  // (one write to the client) instead of one per event.
  parser.eager(true);
  // Streams are unbounded; error bodies are capped below. (Not boost::none: Beast 1.74 compares
  // the length against the optional and treats none as exceeded.)
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  co_await bhttp::async_read_header(stream, conn.buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    cancel.clear_handler();
    nothing_received = ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset;
    out.failure = classify(ec, cancel);
    out.failure_message = ec == beast::error::timeout
                              ? fmt::format("no response within {} ms", r.first_byte_timeout.count())
                              : "reading the response failed: " + ec.message();
    co_return out;
  }
  out.status = static_cast<int>(parser.get().result_int());
  copy_header(parser, "content-type", out.content_type);
  copy_header(parser, "x-ratelimit-remaining-requests", out.ratelimit_remaining_requests);
  copy_header(parser, "x-ratelimit-remaining-tokens", out.ratelimit_remaining_tokens);
  bool ok_status = out.status >= 200 && out.status < 300;
  if (ok_status) {
    bool accepted = co_await sink.on_headers(out);
    if (!accepted) {
      cancel.clear_handler();
      out.failure = ClientFailure::Cancelled;
      out.failure_message = "cancelled";
      co_return out;
    }
  }

  char piece[kReadPieceBytes];
  DeadlineRefresher deadline(r.read_timeout);
  while (!parser.is_done()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof(piece);
    deadline.refresh(lowest);
    co_await bhttp::async_read_some(stream, conn.buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec == bhttp::error::need_buffer) ec = {};
    // read_some hands over one chunk per call; parse whatever else is already buffered too, so
    // that all the events of one TCP read reach the client in one write.
    while (!ec && !parser.is_done() && parser.get().body().size > 0 && conn.buffer.size() > 0) {
      size_t used = parser.put(conn.buffer.data(), ec);
      conn.buffer.consume(used);
      if (ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) {
        ec = {};
        break;
      }
      if (used == 0) break;
    }
    if (ec) {
      cancel.clear_handler();
      out.failure = classify(ec, cancel);
      out.failure_message = ec == beast::error::timeout
                                ? fmt::format("no data from upstream for {} ms", r.read_timeout.count())
                                : "upstream connection failed mid-response: " + ec.message();
      co_return out;
    }
    size_t n = sizeof(piece) - parser.get().body().size;
    if (n == 0) continue;
    if (ok_status) {
      out.body_started = true;
      std::string_view received(piece, n);
      bool accepted = co_await sink.on_body(received);
      if (!accepted) {
        cancel.clear_handler();
        out.failure = ClientFailure::Cancelled;
        out.failure_message = "cancelled";
        co_return out;
      }
    } else if (out.error_body.size() < kMaxErrorBodyBytes) {
      out.error_body.append(piece, std::min(n, kMaxErrorBodyBytes - out.error_body.size()));
    }
  }
  cancel.clear_handler();
  reusable = parser.keep_alive();
  co_return out;
}

asio::awaitable<ClientResponse> exchange_any(Connection& c, const UpstreamTarget& t,
                                             const ClientRequest& r, BodySink& sink,
                                             Cancellation& cancel, bool& reusable,
                                             bool& nothing_received) {
  ClientResponse response;
  if (c.tls) {
    response = co_await exchange_on(*c.tls, c, t, r, sink, cancel, reusable, nothing_received);
  } else {
    response = co_await exchange_on(*c.plain, c, t, r, sink, cancel, reusable, nothing_received);
  }
  co_return response;
}

class StringSink final : public BodySink {
 public:
  explicit StringSink(std::string* out) : out_(out) {}
  asio::awaitable<bool> on_headers(const ClientResponse& response) override {
    (void)response;
    co_return true;
  }
  asio::awaitable<bool> on_body(std::string_view piece) override {
    if (out_) out_->append(piece);
    co_return true;
  }

 private:
  std::string* out_;
};

}  // namespace

const char* to_string(ClientFailure f) {
  switch (f) {
    case ClientFailure::None: return "none";
    case ClientFailure::Connect: return "connect";
    case ClientFailure::Timeout: return "timeout";
    case ClientFailure::Closed: return "closed";
    case ClientFailure::BadResponse: return "bad_response";
    case ClientFailure::Cancelled: return "cancelled";
  }
  return "unknown";
}

asio::awaitable<ClientResponse> send_request(const UpstreamTarget& target,
                                             const ClientRequest& request, BodySink& sink,
                                             Cancellation& cancel) {
  const std::string key = pool_key(target);
  for (int attempt = 0; attempt < 2; ++attempt) {
    ConnectionPtr conn = attempt == 0 ? take_idle(key) : nullptr;
    bool pooled = conn != nullptr;
    if (!conn) {
      auto c = co_await connect(target, request.first_byte_timeout, cancel);
      if (!c) {
        ClientResponse out;
        out.failure = cancel.cancelled() ? ClientFailure::Cancelled : ClientFailure::Connect;
        out.failure_message = c.error().message;
        co_return out;
      }
      conn = std::move(*c);
    }
    bool reusable = false;
    bool nothing_received = false;
    ClientResponse out =
        co_await exchange_any(*conn, target, request, sink, cancel, reusable, nothing_received);
    if (out.failure == ClientFailure::None) {
      if (reusable) give_back(key, std::move(conn));
      co_return out;
    }
    // A keep-alive connection the upstream closed while idle: try once more on a new one.
    if (pooled && nothing_received && out.failure == ClientFailure::Closed && !cancel.cancelled())
      continue;
    co_return out;
  }
  co_return ClientResponse{.failure = ClientFailure::Closed, .failure_message = "unreachable"};
}

asio::awaitable<ClientResponse> get_once(const UpstreamTarget& target, std::string_view path,
                                         std::chrono::milliseconds timeout, std::string* body_out) {
  Cancellation cancel;
  StringSink sink(body_out);
  auto c = co_await connect(target, timeout, cancel);
  if (!c) {
    ClientResponse out;
    out.failure = ClientFailure::Connect;
    out.failure_message = c.error().message;
    co_return out;
  }
  ClientRequest r{.method = "GET", .path = path, .body = {}, .request_id = {},
                  .first_byte_timeout = timeout, .read_timeout = timeout};
  bool reusable = false;
  bool nothing_received = false;
  ClientResponse response =
      co_await exchange_any(**c, target, r, sink, cancel, reusable, nothing_received);
  co_return response;
}

void close_idle_connections_on_this_thread() { thread_pool().clear(); }

size_t idle_connections_on_this_thread() {
  size_t n = 0;
  for (auto& [k, v] : thread_pool()) n += v.size();
  return n;
}

}  // namespace ondol::http
