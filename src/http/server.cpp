#include "http/server.h"

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <array>
#include <thread>
#include <vector>

#include "common/log.h"
#include "http/client.h"
#include "http/deadline.h"

namespace ondol::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr size_t kWatchBufferBytes = 4096;
constexpr std::string_view kComponent = "http";

using Clock = std::chrono::steady_clock;

// A one-shot event that a coroutine can wait for: a timer that never expires until cancelled.
class Event {
 public:
  explicit Event(const asio::any_io_executor& ex) : timer_(ex, Clock::time_point::max()) {}
  void set() {
    set_ = true;
    timer_.cancel();
  }
  bool is_set() const { return set_; }
  asio::awaitable<void> wait() {
    while (!set_) {
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

// Watches the client socket while a handler runs: a read that completes with an error means the
// client went away; bytes that arrive are the next pipelined request, kept for the session.
struct Watch {
  explicit Watch(const asio::any_io_executor& ex) : finished(ex) {}
  std::array<char, kWatchBufferBytes> buffer{};
  size_t received = 0;
  bool active = false;
  bool gone = false;
  std::function<void()> on_gone;
  Event finished;
};

// A deadline for reading a request. tcp_stream's own timeout closes the socket when it fires,
// which leaves no way to answer 408; this one only cancels the read, so the session can still
// tell the client why it is being disconnected.
class ReadDeadline {
 public:
  explicit ReadDeadline(const asio::any_io_executor& ex)
      : timer_(ex), state_(std::make_shared<State>()) {}

  void arm(tcp::socket& socket, std::chrono::milliseconds timeout) {
    state_->socket = &socket;
    state_->fired = false;
    timer_.expires_after(timeout);
    timer_.async_wait([state = state_](const boost::system::error_code& ec) {
      if (ec || !state->socket) return;  // cancelled, or the read finished first
      state->fired = true;
      boost::system::error_code ignored;
      state->socket->cancel(ignored);
    });
  }
  // Ends the deadline; returns true when it fired (the read was cut short by it).
  bool disarm() {
    state_->socket = nullptr;
    timer_.cancel();
    return state_->fired;
  }

 private:
  struct State {
    tcp::socket* socket = nullptr;  // valid while armed: the session is inside the read
    bool fired = false;
  };
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Handler handler;
  ErrorBodyFn error_body;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  uint16_t bound_port = 0;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> active_requests{0};
  std::atomic<int64_t> open_connections{0};

  asio::awaitable<void> accept_loop(tcp::acceptor& acceptor);
  asio::awaitable<void> session(tcp::socket socket);
};

namespace {

class BeastExchange final : public Exchange {
 public:
  BeastExchange(HttpServer::Impl& server, beast::tcp_stream& stream,
                bhttp::request<bhttp::string_body>& request, std::string remote,
                Clock::time_point started, std::shared_ptr<Watch> watch)
      : server_(server),
        stream_(stream),
        request_(request),
        remote_(std::move(remote)),
        started_(started),
        watch_(std::move(watch)) {
    std::string_view t(request_.target().data(), request_.target().size());
    auto q = t.find('?');
    path_ = t.substr(0, q);
    if (q != std::string_view::npos) query_ = t.substr(q + 1);
    keep_alive_ = request_.keep_alive();
  }

  std::string_view method() const override {
    auto m = request_.method_string();
    return {m.data(), m.size()};
  }
  std::string_view target() const override {
    return {request_.target().data(), request_.target().size()};
  }
  std::string_view path() const override { return path_; }
  std::string_view query() const override { return query_; }
  std::string_view header(std::string_view name) const override {
    auto it = request_.find(beast::string_view(name.data(), name.size()));
    if (it == request_.end()) return {};
    return {it->value().data(), it->value().size()};
  }
  const std::string& body() const override { return request_.body(); }
  std::string_view remote_address() const override { return remote_; }
  double elapsed_seconds() const override {
    return std::chrono::duration<double>(Clock::now() - started_).count();
  }
  void add_response_header(std::string name, std::string value) override {
    if (extra_headers_.empty()) extra_headers_.reserve(6);  // a rate-limited answer adds 4-5
    extra_headers_.emplace_back(std::move(name), std::move(value));
  }

  asio::awaitable<void> respond(int status, std::string_view content_type,
                                std::string body) override {
    if (responded_) co_return;
    responded_ = true;
    status_ = status;
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status),
                                             request_.version()};
    res.set(bhttp::field::server, server_.options.server_name);
    res.set(bhttp::field::content_type, content_type);
    for (auto& [k, v] : extra_headers_) res.set(k, v);
    res.keep_alive(keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    stream_.expires_after(server_.options.write_timeout);
    boost::system::error_code ec;
    if (request_.method() == bhttp::verb::head) {
      // A HEAD answer is the GET answer's header, Content-Length included, and no content
      // (RFC 9110 9.3.2): content here would be read as the start of the next response.
      bhttp::response_serializer<bhttp::string_body> sr(res);
      co_await bhttp::async_write_header(stream_, sr,
                                         asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await bhttp::async_write(stream_, res, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) write_failed_ = true;
  }

  asio::awaitable<bool> begin_stream(int status, std::string_view content_type) override {
    if (responded_) co_return false;
    responded_ = true;
    streaming_ = true;
    status_ = status;
    bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(status),
                                            request_.version()};
    res.set(bhttp::field::server, server_.options.server_name);
    res.set(bhttp::field::content_type, content_type);
    res.set(bhttp::field::cache_control, "no-cache");
    res.set("X-Accel-Buffering", "no");
    for (auto& [k, v] : extra_headers_) res.set(k, v);
    res.keep_alive(keep_alive());
    res.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr(res);
    stream_.expires_after(server_.options.write_timeout);
    boost::system::error_code ec;
    co_await bhttp::async_write_header(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) write_failed_ = true;
    co_return !write_failed_ && !client_gone();
  }

  asio::awaitable<bool> write(std::string_view chunk) override {
    if (!streaming_ || write_failed_ || client_gone()) co_return false;
    if (chunk.empty()) co_return true;  // an empty chunk would end the body
    char size_line[24];
    auto n = fmt::format_to_n(size_line, sizeof(size_line), "{:x}\r\n", chunk.size()).size;
    std::array<asio::const_buffer, 3> buffers{asio::buffer(size_line, n),
                                              asio::buffer(chunk.data(), chunk.size()),
                                              asio::buffer("\r\n", 2)};
    stream_deadline_.refresh(stream_);
    boost::system::error_code ec;
    co_await asio::async_write(stream_, buffers, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) write_failed_ = true;
    co_return !write_failed_;
  }

  asio::awaitable<void> end_stream() override {
    if (!streaming_ || write_failed_ || ended_) co_return;
    ended_ = true;
    stream_.expires_after(server_.options.write_timeout);
    boost::system::error_code ec;
    co_await asio::async_write(stream_, asio::buffer("0\r\n\r\n", 5),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) write_failed_ = true;
  }

  void abort() override {
    write_failed_ = true;
    boost::system::error_code ec;
    stream_.socket().set_option(asio::socket_base::linger(true, 0), ec);
    stream_.socket().close(ec);
  }

  bool responded() const override { return responded_; }
  int response_status() const override { return status_; }

  void on_client_gone(std::function<void()> callback) override {
    if (watch_->gone) {
      callback();
      return;
    }
    watch_->on_gone = std::move(callback);
    start_watch();
  }
  bool client_gone() const override { return watch_->gone; }

  // The connection can serve another request after this one.
  bool reusable() const {
    return keep_alive() && !write_failed_ && !watch_->gone && (!streaming_ || ended_);
  }
  bool keep_alive() const { return keep_alive_ && !server_.draining.load(); }

  // Stops the watcher and waits until its read has completed, so the session may read again.
  asio::awaitable<void> stop_watch() {
    if (!watch_->active) co_return;
    boost::system::error_code ignored;
    stream_.socket().cancel(ignored);
    co_await watch_->finished.wait();
  }

 private:
  void start_watch() {
    if (watch_->active) return;
    watch_->active = true;
    auto w = watch_;
    stream_.socket().async_read_some(
        asio::buffer(w->buffer), [w](boost::system::error_code ec, size_t n) {
          w->received = n;
          if (ec && ec != asio::error::operation_aborted) {
            w->gone = true;
            if (w->on_gone) std::exchange(w->on_gone, nullptr)();
          }
          w->finished.set();
        });
  }

  HttpServer::Impl& server_;
  beast::tcp_stream& stream_;
  bhttp::request<bhttp::string_body>& request_;
  std::string remote_;
  Clock::time_point started_;
  std::shared_ptr<Watch> watch_;
  std::string_view path_;
  std::string_view query_;
  Headers extra_headers_;
  bool keep_alive_ = true;
  bool responded_ = false;
  bool streaming_ = false;
  bool ended_ = false;
  bool write_failed_ = false;
  int status_ = 0;
  DeadlineRefresher stream_deadline_{server_.options.write_timeout};
};

// Writes a server-generated error (limits, timeouts, malformed requests) and closes.
asio::awaitable<void> write_error(HttpServer::Impl& server, beast::tcp_stream& stream, int status,
                                  std::string_view message) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::server, server.options.server_name);
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = server.error_body(status, message);
  res.prepare_payload();
  stream.expires_after(server.options.write_timeout);
  boost::system::error_code ec;
  co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace

asio::awaitable<void> HttpServer::Impl::accept_loop(tcp::acceptor& acceptor) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      log::warn(kComponent, "accept failed", {{"error", ec.message()}});
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::Impl::session(tcp::socket socket) {
  open_connections.fetch_add(1, std::memory_order_relaxed);
  struct Closer {
    std::atomic<int64_t>& n;
    ~Closer() { n.fetch_sub(1, std::memory_order_relaxed); }
  } closer{open_connections};

  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  std::string remote = ec ? std::string("unknown") : endpoint.address().to_string();
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  auto executor = co_await asio::this_coro::executor;
  ReadDeadline deadline(executor);

  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_body_bytes);

    // Idle: the wait for a request's headers (also bounds a client that sends them slowly).
    // Reads run under ReadDeadline, not the stream's timer (a write may have armed that).
    stream.expires_never();
    deadline.arm(stream.socket(), options.idle_timeout);
    co_await bhttp::async_read_header(stream, buffer, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
    bool timed_out = deadline.disarm();
    auto started = Clock::now();
    if (ec) {
      if (timed_out) {
        // A partial request gets told; an idle keep-alive connection just closes.
        if (buffer.size() > 0)
          co_await write_error(*this, stream, 408, "Timed out reading the request headers.");
      } else if (ec == bhttp::error::header_limit) {
        co_await write_error(*this, stream, 431, "Request headers are too large.");
      } else if (ec == bhttp::error::body_limit) {  // Content-Length alone is over the limit
        std::string message = fmt::format("Request body is larger than the limit of {} bytes.",
                                          options.max_body_bytes);
        co_await write_error(*this, stream, 413, message);
      } else if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
                 ec != asio::error::connection_reset && ec != asio::error::eof &&
                 ec != asio::error::operation_aborted) {
        std::string message = "Malformed HTTP request: " + ec.message();
        co_await write_error(*this, stream, 400, message);
      }
      break;
    }
    if (parser.get()[bhttp::field::expect] == "100-continue") {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      co_await bhttp::async_write(stream, cont, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    deadline.arm(stream.socket(), options.read_timeout);
    co_await bhttp::async_read(stream, buffer, parser,
                               asio::redirect_error(asio::use_awaitable, ec));
    timed_out = deadline.disarm();
    if (ec) {
      if (timed_out) {
        co_await write_error(*this, stream, 408, "Timed out reading the request body.");
      } else if (ec == bhttp::error::body_limit) {
        std::string message = fmt::format("Request body is larger than the limit of {} bytes.",
                                          options.max_body_bytes);
        co_await write_error(*this, stream, 413, message);
      } else if (ec != bhttp::error::end_of_stream && ec != asio::error::connection_reset &&
                 ec != asio::error::eof) {
        std::string message = "Malformed HTTP request: " + ec.message();
        co_await write_error(*this, stream, 400, message);
      }
      break;
    }
    auto request = parser.release();
    auto watch = std::make_shared<Watch>(executor);
    BeastExchange exchange(*this, stream, request, remote, started, watch);
    active_requests.fetch_add(1, std::memory_order_relaxed);
    try {
      co_await handler(exchange);
    } catch (const std::exception& e) {
      // A handler bug must not take the process down: answer 500 if nothing went out yet.
      log::error(kComponent, "handler failed", {{"error", e.what()}, {"path", exchange.path()}});
    }
    if (!exchange.responded()) {
      std::string body = error_body(500, "The handler produced no response.");
      co_await exchange.respond(500, "application/json", std::move(body));
    }
    active_requests.fetch_sub(1, std::memory_order_relaxed);
    co_await exchange.stop_watch();
    if (!exchange.reusable()) break;
    if (watch->received > 0) {  // a pipelined request arrived while the handler ran
      auto dst = buffer.prepare(watch->received);
      asio::buffer_copy(dst, asio::buffer(watch->buffer.data(), watch->received));
      buffer.commit(watch->received);
    }
  }
  if (stream.socket().is_open()) {
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.close();
  }
}

HttpServer::HttpServer(ServerOptions options, Handler handler, ErrorBodyFn error_body)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->error_body = std::move(error_body);
  int n = impl_->options.io_threads;
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
}

HttpServer::~HttpServer() = default;

Status HttpServer::listen() {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return make_error("invalid --host '" + impl_->options.host + "': " + ec.message());
  uint16_t port = impl_->options.port;
  for (auto& ctx : impl_->contexts) {
    auto acceptor = std::make_unique<tcp::acceptor>(*ctx);
    tcp::endpoint ep(address, port);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        ec = boost::system::error_code(errno, boost::system::system_category());
    }
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return make_error(fmt::format("cannot listen on {}:{}: {}", impl_->options.host, port,
                                    ec.message()));
    }
    // With port 0 the first bind picks a port; the other threads join it.
    port = acceptor->local_endpoint().port();
    impl_->acceptors.push_back(std::move(acceptor));
  }
  impl_->bound_port = port;
  for (size_t i = 0; i < impl_->contexts.size(); ++i) {
    asio::co_spawn(*impl_->contexts[i], impl_->accept_loop(*impl_->acceptors[i]), asio::detached);
  }
  return Ok{};
}

uint16_t HttpServer::port() const { return impl_->bound_port; }
int HttpServer::io_threads() const { return static_cast<int>(impl_->contexts.size()); }

void HttpServer::run() {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->contexts.size(); ++i) {
    threads.emplace_back([ctx = impl_->contexts[i].get()] {
      auto guard = asio::make_work_guard(*ctx);
      ctx->run();
      close_idle_connections_on_this_thread();
    });
  }
  {
    auto guard = asio::make_work_guard(*impl_->contexts[0]);
    impl_->contexts[0]->run();
    close_idle_connections_on_this_thread();
  }
  for (auto& t : threads) t.join();
}

void HttpServer::stop_accepting() {
  impl_->draining.store(true);
  for (size_t i = 0; i < impl_->contexts.size(); ++i) {
    asio::post(*impl_->contexts[i], [a = impl_->acceptors[i].get()] {
      boost::system::error_code ec;
      a->close(ec);
    });
  }
}

void HttpServer::stop() {
  for (auto& ctx : impl_->contexts) ctx->stop();
}

bool HttpServer::draining() const { return impl_->draining.load(); }
int64_t HttpServer::active_requests() const { return impl_->active_requests.load(); }
int64_t HttpServer::open_connections() const { return impl_->open_connections.load(); }
asio::io_context& HttpServer::main_context() { return *impl_->contexts[0]; }

}  // namespace ondol::http
