// Request and response body logging: off by default; when on, a sampled share of API requests
// gets one log line with both bodies, secrets redacted (and, on request, the prompts and
// completions themselves), truncated to a bound. RecordingExchange sits between the gateway and
// the connection and keeps a copy of what the client was sent.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/exchange.h"

namespace ondol::gateway {

struct BodyLogOptions {
  double sample_rate = 0;         // share of API requests logged with bodies; 0: off
  bool redact_content = false;    // also blank message text, prompts, completions, inputs
  size_t max_bytes = 16 * 1024;   // per body, after redaction
};

// Secrets out: string values of credential-named fields (api_key, authorization, password,
// token, key, ...) and anything shaped like a bearer key ("sk-..."), anywhere in the text. With
// redact_content, the text of messages, prompts, completions and embedding inputs becomes
// "[REDACTED n chars]". Understands a JSON document and an SSE stream of JSON events; any other
// body only has its key-shaped strings masked. Longer than max_bytes: cut, with a marker.
std::string redact_body(std::string_view body, const BodyLogOptions& options);

// True for a `rate` share of calls (thread-local generator).
bool sample_body_log(double rate);

// Forwards every call to the real exchange and keeps up to `max_bytes` of the response body.
class RecordingExchange final : public http::Exchange {
 public:
  RecordingExchange(http::Exchange& inner, size_t max_bytes) : inner_(inner), max_bytes_(max_bytes) {}

  const std::string& response_body() const { return captured_; }
  bool truncated() const { return truncated_; }

  std::string_view method() const override { return inner_.method(); }
  std::string_view target() const override { return inner_.target(); }
  std::string_view path() const override { return inner_.path(); }
  std::string_view query() const override { return inner_.query(); }
  std::string_view header(std::string_view name) const override { return inner_.header(name); }
  const std::string& body() const override { return inner_.body(); }
  std::string_view remote_address() const override { return inner_.remote_address(); }
  double elapsed_seconds() const override { return inner_.elapsed_seconds(); }
  void add_response_header(std::string name, std::string value) override {
    inner_.add_response_header(std::move(name), std::move(value));
  }
  boost::asio::awaitable<void> respond(int status, std::string_view content_type,
                                       std::string body) override;
  boost::asio::awaitable<bool> begin_stream(int status, std::string_view content_type) override;
  boost::asio::awaitable<bool> write(std::string_view chunk) override;
  boost::asio::awaitable<void> end_stream() override;
  void abort() override { inner_.abort(); }
  bool responded() const override { return inner_.responded(); }
  int response_status() const override { return inner_.response_status(); }
  void on_client_gone(std::function<void()> callback) override {
    inner_.on_client_gone(std::move(callback));
  }
  bool client_gone() const override { return inner_.client_gone(); }

 private:
  void capture(std::string_view bytes);

  http::Exchange& inner_;
  size_t max_bytes_;
  std::string captured_;
  bool truncated_ = false;
};

}  // namespace ondol::gateway
