// Re-arming a stream's timer costs a timer syscall per operation; in a stream of hundreds of
// small reads and writes that is most of the work. A DeadlineRefresher re-arms only when a
// meaningful part of the timeout has passed since the last arming, so a deadline is never more
// than `slack` late and a busy stream pays for a timer call about once a second.
#pragma once

#include <algorithm>
#include <chrono>

namespace ondol::http {

class DeadlineRefresher {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kMaxSlack{1000};

  explicit DeadlineRefresher(std::chrono::milliseconds timeout)
      : timeout_(timeout), slack_(std::min(kMaxSlack, timeout / 4)) {}

  // Calls stream.expires_after(timeout) unless that was done less than `slack` ago.
  template <typename Stream>
  void refresh(Stream& stream) {
    auto now = Clock::now();
    if (armed_ && now - last_armed_ < slack_) return;
    stream.expires_after(timeout_);
    last_armed_ = now;
    armed_ = true;
  }
  // The stream's timer was set by someone else: arm again on the next refresh.
  void invalidate() { armed_ = false; }

 private:
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds slack_;
  Clock::time_point last_armed_{};
  bool armed_ = false;
};

}  // namespace ondol::http
