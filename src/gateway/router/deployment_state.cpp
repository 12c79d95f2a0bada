#include "gateway/router/deployment_state.h"

namespace ondol::gateway {
namespace {

int64_t to_ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

void DeploymentState::observe_latency(double seconds) {
  double old = latency_ewma_.load(std::memory_order_relaxed);
  double next;
  do {
    next = old < 0 ? seconds : old + kLatencyAlpha * (seconds - old);
  } while (!latency_ewma_.compare_exchange_weak(old, next, std::memory_order_relaxed));
}

double DeploymentState::latency_ewma_seconds() const {
  return latency_ewma_.load(std::memory_order_relaxed);
}

bool DeploymentState::cooling_down(Clock::time_point now) const {
  return to_ns(now) < cooldown_until_ns_.load(std::memory_order_relaxed);
}

bool DeploymentState::record_failure(Clock::time_point now, int allowed_fails,
                                     double cooldown_seconds) {
  std::lock_guard lock(mu_);
  while (!failures_.empty() && now - failures_.front() > kFailureWindow) failures_.pop_front();
  failures_.push_back(now);
  if (static_cast<int>(failures_.size()) < std::max(1, allowed_fails) || cooldown_seconds <= 0)
    return false;
  failures_.clear();
  auto until = now + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(cooldown_seconds));
  cooldown_until_ns_.store(to_ns(until), std::memory_order_relaxed);
  return true;
}

int DeploymentState::recent_failures(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  while (!failures_.empty() && now - failures_.front() > kFailureWindow) failures_.pop_front();
  return static_cast<int>(failures_.size());
}

}  // namespace ondol::gateway
