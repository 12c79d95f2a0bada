// The mock model: answers OpenAI requests the way an OpenAI-compatible server does, with
// configurable latency, chunking and faults, and no model behind it. The same code serves the
// in-process `mock/NAME` provider and the standalone `ondol mock-upstream`, so the gateway can be
// measured both without and over a real HTTP hop.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "http/cancellation.h"

namespace ondol::gateway::mock {

// Where the mock's response goes: an HTTP exchange (mock-upstream) or the gateway's relay
// (in-process provider). Each write returns false once the receiver is gone.
class MockOutput {
 public:
  virtual ~MockOutput() = default;
  virtual boost::asio::awaitable<bool> begin(int status, std::string_view content_type,
                                             bool stream) = 0;
  virtual boost::asio::awaitable<bool> write(std::string_view piece) = 0;
  virtual boost::asio::awaitable<void> finish() = 0;
  // Drops the connection without completing the response (fault injection).
  virtual void crash() = 0;
};

struct MockStats {
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> streams_started{0};
  std::atomic<int64_t> streams_completed{0};
  std::atomic<int64_t> streams_cancelled{0};
  std::atomic<int64_t> active{0};

  std::string to_json() const;
};

// Which API the request is for: "/chat/completions", "/completions", "/embeddings" or "/models".
// `served_model`: the model name to report; empty: echo the request's "model".
boost::asio::awaitable<void> respond(const MockParams& defaults, std::string_view path,
                                     std::string_view served_model, std::string_view body,
                                     MockOutput& out, http::Cancellation& cancel,
                                     MockStats& stats);

}  // namespace ondol::gateway::mock
