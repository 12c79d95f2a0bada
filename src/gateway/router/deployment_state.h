// What the router knows of a deployment at run time: requests in flight (least-busy), a moving
// average of latency (latency-based routing) and recent failures (cooldown). Shared by all I/O
// threads; carried across config reloads by deployment id so a reload does not forget that a
// deployment is down.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>

namespace ondol::gateway {

using Clock = std::chrono::steady_clock;

class DeploymentState {
 public:
  static constexpr std::chrono::seconds kFailureWindow{60};
  static constexpr double kLatencyAlpha = 0.2;  // weight of the newest sample in the EWMA

  std::atomic<int> in_flight{0};

  // Latency of a successful call in seconds (time to first byte for streams).
  void observe_latency(double seconds);
  double latency_ewma_seconds() const;  // < 0 while unknown

  bool cooling_down(Clock::time_point now) const;
  // Records a failure; returns true when it puts the deployment into cooldown: `allowed_fails`
  // failures within kFailureWindow cool it down for `cooldown_seconds`.
  bool record_failure(Clock::time_point now, int allowed_fails, double cooldown_seconds);
  int recent_failures(Clock::time_point now) const;

 private:
  std::atomic<double> latency_ewma_{-1.0};
  std::atomic<int64_t> cooldown_until_ns_{0};
  mutable std::mutex mu_;
  mutable std::deque<Clock::time_point> failures_;
};

}  // namespace ondol::gateway
