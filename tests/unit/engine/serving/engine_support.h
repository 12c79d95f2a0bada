// Drives an Engine from a test: submit requests, wait for their whole output, wait for idle.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/engine.h"

namespace ondol::engine::testing {

// One request's output as it accumulates; wait() blocks until it finishes.
class Collector {
 public:
  explicit Collector(std::shared_ptr<RequestChannel> channel) : channel_(std::move(channel)) {
    channel_->set_notify([this] {
      std::lock_guard lock(mu_);
      ++wakeups_;
      cv_.notify_all();
    });
  }
  ~Collector() { channel_->set_notify(nullptr); }

  // Drains until finished (or the deadline); returns the whole output.
  EngineOutput wait(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    EngineOutput part;
    while (!whole_.finished) {
      part = EngineOutput{};
      if (channel_->drain(part)) {
        whole_.text += part.text;
        whole_.finished = part.finished;
        whole_.finish_reason = part.finish_reason;
        whole_.prompt_tokens = part.prompt_tokens;
        whole_.completion_tokens = part.completion_tokens;
        whole_.cached_tokens = part.cached_tokens;
        if (!part.error.empty()) whole_.error = part.error;
        continue;
      }
      std::unique_lock lock(mu_);
      if (!cv_.wait_until(lock, deadline, [&] { return wakeups_ != seen_; })) {
        whole_.error = "timed out";
        break;
      }
      seen_ = wakeups_;
    }
    return whole_;
  }
  RequestChannel& channel() { return *channel_; }

 private:
  std::shared_ptr<RequestChannel> channel_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t wakeups_ = 0, seen_ = 0;
  EngineOutput whole_;
};

// Polls stats() until nothing runs or waits (the snapshot is taken after each step, so the
// blocks of the last sequences to leave are back by then); false on timeout.
inline bool wait_idle(const Engine& engine, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    EngineStats s = engine.stats();
    if (s.num_running == 0 && s.num_waiting == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace ondol::engine::testing
