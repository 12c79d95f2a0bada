// The in-process `mock/NAME` provider: the mock model answering through the relay's BodySink,
// exactly as if its bytes had come over HTTP.
#include <utility>

#include <boost/asio.hpp>

#include "gateway/backends/backend.h"
#include "gateway/mock/mock_responder.h"

namespace ondol::gateway {

namespace asio = boost::asio;

namespace mock_backend_detail {

// Adapts the mock's output to the relay's BodySink, as if it had come over HTTP.
class SinkOutput : public mock::MockOutput {
 public:
  SinkOutput(http::BodySink& sink, http::ClientResponse& response)
      : sink_(sink), response_(response) {}

  asio::awaitable<bool> begin(int status, std::string_view content_type, bool /*stream*/ stream_unused) override {
    (void)stream_unused;
    response_.status = status;
    response_.content_type = content_type;
    ok_ = status >= 200 && status < 300;
    if (ok_) {
      bool accepted = co_await sink_.on_headers(response_);
      if (!accepted) {
        response_.failure = http::ClientFailure::Cancelled;
        co_return false;
      }
    }
    co_return true;
  }
  asio::awaitable<bool> write(std::string_view piece) override {
    if (!ok_) {
      response_.error_body.append(piece);
      co_return true;
    }
    response_.body_started = true;
    bool accepted = co_await sink_.on_body(piece);
    if (!accepted) {
      response_.failure = http::ClientFailure::Cancelled;
      co_return false;
    }
    co_return true;
  }
  asio::awaitable<void> finish() override { co_return; }
  void crash() override {
    response_.failure = http::ClientFailure::Closed;
    response_.failure_message = "mock upstream crashed mid-response";
  }

 private:
  http::BodySink& sink_;
  http::ClientResponse& response_;
  bool ok_ = false;
};

class MockBackend : public Backend {
 public:
  explicit MockBackend(const DeploymentConfig& config)
      : params_(config.mock), model_(config.upstream_model) {}

  asio::awaitable<http::ClientResponse> call(const http::ClientRequest& request,
                                             http::BodySink& sink,
                                             http::Cancellation& cancel) override {
    auto response = std::make_unique<http::ClientResponse>();
    auto out = std::make_unique<SinkOutput>(sink, *response);
    co_await mock::respond(params_, request.path, model_, request.body, *out, cancel, stats_);
    if (cancel.cancelled() && response->failure == http::ClientFailure::None) {
      response->failure = http::ClientFailure::Cancelled;
      response->failure_message = "cancelled";
    }
    co_return std::move(*response);
  }

  asio::awaitable<std::string> probe(std::chrono::milliseconds timeout) override {
    (void)timeout;
    co_return std::string();
  }

 private:
  MockParams params_;
  std::string model_;
  mock::MockStats stats_;
};

}  // namespace mock_backend_detail

std::unique_ptr<Backend> make_mock_backend(const DeploymentConfig& config) {
  return std::make_unique<mock_backend_detail::MockBackend>(config);
}

}  // namespace ondol::gateway
