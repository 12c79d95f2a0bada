// `ondol mock-upstream`: the mock model behind a real HTTP server, an OpenAI-compatible
// upstream for tests and benchmarks that costs almost nothing per request.
#pragma once

#include "gateway/config/config.h"
#include "http/server.h"

namespace ondol::gateway::mock {

struct MockUpstreamOptions {
  http::ServerOptions server;
  MockParams params;
  int fail_status = 0;  // when set, every completion request fails with this status
};

// Serves until SIGINT/SIGTERM. Returns the process exit code.
int run_mock_upstream(const MockUpstreamOptions& options);

}  // namespace ondol::gateway::mock
