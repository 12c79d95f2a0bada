// A one-shot cancellation signal between a request and the I/O it started: the client going
// away (or a deadline) calls cancel(); whatever operation is in progress has registered how to
// abort itself (closing its socket, cancelling its timer). Single-threaded by design: both sides
// run on the request's I/O thread.
#pragma once

#include <functional>
#include <utility>

namespace ondol::http {

class Cancellation {
 public:
  void cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    if (handler_) std::exchange(handler_, nullptr)();
  }
  bool cancelled() const { return cancelled_; }
  // Runs `handler` at once if already cancelled.
  void set_handler(std::function<void()> handler) {
    if (cancelled_) handler();
    else handler_ = std::move(handler);
  }
  void clear_handler() { handler_ = nullptr; }

 private:
  bool cancelled_ = false;
  std::function<void()> handler_;
};

}  // namespace ondol::http
