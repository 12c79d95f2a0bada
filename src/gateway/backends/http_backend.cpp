#include <utility>

#include <boost/asio.hpp>
#include <fmt/format.h>

#include "gateway/backends/backend.h"

namespace ondol::gateway {

namespace asio = boost::asio;

namespace {

// An OpenAI-compatible server over HTTP(S): vLLM, TGI, OpenAI, another ondol.
class HttpBackend final : public Backend {
 public:
  explicit HttpBackend(http::UpstreamTarget target) : target_(std::move(target)) {}

  asio::awaitable<http::ClientResponse> call(const http::ClientRequest& request,
                                             http::BodySink& sink,
                                             http::Cancellation& cancel) override {
    http::ClientResponse response = co_await http::send_request(target_, request, sink, cancel);
    co_return response;
  }

  asio::awaitable<std::string> probe(std::chrono::milliseconds timeout) override {
    std::string body;
    auto r = co_await http::get_once(target_, "/models", timeout, &body);
    if (r.failure != http::ClientFailure::None) co_return r.failure_message;
    if (r.status >= 500) co_return fmt::format("GET /models answered {}", r.status);
    co_return std::string();
  }

 private:
  http::UpstreamTarget target_;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_backend(const DeploymentConfig& config,
                                              metrics::Registry* registry) {
  if (config.kind == ProviderKind::Mock) return make_mock_backend(config);
  if (config.kind == ProviderKind::Local) return make_local_backend(config, registry);
  auto url = http::parse_url(config.api_base);
  if (!url) return make_error(fmt::format("deployment '{}': {}", config.model_name, url.error().message));
  http::UpstreamTarget target{.url = *url,
                              .api_key = config.api_key,
                              .ssl_verify = config.ssl_verify,
                              .ssl_ca_file = config.ssl_ca_file};
  return std::unique_ptr<Backend>(new HttpBackend(std::move(target)));
}

}  // namespace ondol::gateway
