// A backend serves one deployment's calls. The gateway never knows whether the bytes come from
// another process over HTTP or from a model in this one: both deliver an OpenAI response
// through the same BodySink, and report failures the same way.
#pragma once

#include <memory>

#include "common/metrics/registry.h"
#include "gateway/config/config.h"
#include "http/client.h"

namespace ondol::engine {
class Engine;
}

namespace ondol::gateway {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual boost::asio::awaitable<http::ClientResponse> call(const http::ClientRequest& request,
                                                            http::BodySink& sink,
                                                            http::Cancellation& cancel) = 0;
  // A cheap liveness probe for /health?deep=1. Returns an empty string when healthy, else why not.
  virtual boost::asio::awaitable<std::string> probe(std::chrono::milliseconds timeout) = 0;
  // The in-process engine behind this backend, if any (for /tokenize and /detokenize).
  virtual engine::Engine* local_engine() { return nullptr; }
};

// The in-process mock model (mock/NAME).
std::unique_ptr<Backend> make_mock_backend(const DeploymentConfig& config);

// The in-process engine (local/PATH.gguf); loading the model may fail.
// `registry` (may be null) receives the engine's vllm:* metrics.
Result<std::unique_ptr<Backend>> make_local_backend(const DeploymentConfig& config,
                                                    metrics::Registry* registry);

// Chooses the backend for a deployment's provider.
Result<std::unique_ptr<Backend>> make_backend(const DeploymentConfig& config,
                                              metrics::Registry* registry = nullptr);

}  // namespace ondol::gateway
