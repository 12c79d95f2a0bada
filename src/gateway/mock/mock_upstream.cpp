#include "gateway/mock/mock_upstream.h"

#include <utility>

#include <boost/asio.hpp>
#include <fmt/format.h>

#include <cstdio>

#include "common/log.h"
#include "gateway/mock/mock_responder.h"
#include "openai/error.h"

namespace ondol::gateway::mock {

namespace asio = boost::asio;

namespace {

constexpr int kMockRateLimit = 1'000'000;

// The mock writes straight into the HTTP exchange.
class ExchangeOutput final : public MockOutput {
 public:
  explicit ExchangeOutput(http::Exchange& ex, const MockStats& stats) : ex_(ex), stats_(stats) {}

  asio::awaitable<bool> begin(int status, std::string_view content_type, bool stream) override {
    // Headers an OpenAI-style server sends, so the gateway's litellm_remaining_* have data.
    ex_.add_response_header("x-ratelimit-limit-requests", std::to_string(kMockRateLimit));
    ex_.add_response_header("x-ratelimit-remaining-requests",
                            std::to_string(kMockRateLimit - stats_.active.load()));
    ex_.add_response_header("x-ratelimit-limit-tokens", std::to_string(kMockRateLimit));
    ex_.add_response_header("x-ratelimit-remaining-tokens", std::to_string(kMockRateLimit));
    status_ = status;
    content_type_ = content_type;
    stream_ = stream;
    if (stream) {
      bool open = co_await ex_.begin_stream(status, content_type);
      co_return open;
    }
    co_return true;
  }
  asio::awaitable<bool> write(std::string_view piece) override {
    if (stream_) {
      bool written = co_await ex_.write(piece);
      co_return written;
    }
    body_.append(piece);
    co_return true;
  }
  asio::awaitable<void> finish() override {
    if (stream_) co_await ex_.end_stream();
    else if (status_) co_await ex_.respond(status_, content_type_, std::move(body_));
  }
  void crash() override { ex_.abort(); }

 private:
  http::Exchange& ex_;
  const MockStats& stats_;
  int status_ = 0;
  std::string content_type_;
  bool stream_ = false;
  std::string body_;
};

std::string_view strip_v1(std::string_view path) {
  if (path.starts_with("/v1/")) path.remove_prefix(3);
  return path;
}

}  // namespace

int run_mock_upstream(const MockUpstreamOptions& options) {
  MockStats stats;
  auto handler = [&](http::Exchange& ex) -> asio::awaitable<void> {
    // Each co_await gets named arguments: see docs/architecture.md, "Coroutines and GCC 12".
    std::string_view path = strip_v1(ex.path());
    std::string body;
    if (ex.method() == "GET" && path == "/mock/stats") {
      body = stats.to_json();
      co_await ex.respond(200, "application/json", std::move(body));
      co_return;
    }
    if (ex.method() == "GET" && (path == "/health" || path == "/models")) {
      if (path == "/health") body = R"({"status":"healthy"})";
      else body = R"({"object":"list","data":[{"id":"mock","object":"model","owned_by":"ondol"}]})";
      co_await ex.respond(200, "application/json", std::move(body));
      co_return;
    }
    if (ex.method() != "POST") {
      body = openai::not_found_path(ex.path()).to_json();
      co_await ex.respond(404, "application/json", std::move(body));
      co_return;
    }
    if (options.fail_status >= 400) {
      stats.requests.fetch_add(1, std::memory_order_relaxed);
      openai::ApiError e{options.fail_status,
                         fmt::format("mock-upstream configured to fail with {}", options.fail_status),
                         "server_error", {}, {}};
      body = e.to_json();
      co_await ex.respond(e.status, "application/json", std::move(body));
      co_return;
    }
    http::Cancellation cancel;
    ex.on_client_gone([&cancel] { cancel.cancel(); });
    ExchangeOutput out(ex, stats);
    co_await respond(options.params, path, {}, ex.body(), out, cancel, stats);
  };
  auto error_body = [](int status, std::string_view message) {
    return openai::ApiError{status, std::string(message), "invalid_request_error", {}, {}}.to_json();
  };
  http::HttpServer server(options.server, handler, error_body);
  if (auto st = server.listen(); !st) {
    log::error("mock-upstream", st.error().message);
    return 1;
  }
  asio::signal_set signals(server.main_context(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) server.stop();
  });
  log::info("mock-upstream", "listening",
            {{"host", options.server.host}, {"port", static_cast<int>(server.port())},
             {"io_threads", server.io_threads()}});
  std::printf("ONDOL_LISTENING port=%u\n", server.port());
  std::fflush(stdout);
  server.run();
  return 0;
}

}  // namespace ondol::gateway::mock
