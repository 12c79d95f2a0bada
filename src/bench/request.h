// One benchmark request: its OpenAI body, and the reader that turns the response (an SSE stream,
// or a whole JSON body) into timings, text and token counts as vLLM's benchmark measures them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/metrics.h"
#include "http/sse.h"

namespace ondol::bench {

enum class ApiKind { Completions, Chat };

struct BodyParams {
  ApiKind api = ApiKind::Completions;
  std::string model;
  double temperature = 0;
  std::optional<int64_t> seed;  // sent when set
  bool stream = true;
  bool ignore_eos = false;
};

// The JSON body of a request: `prompt` (completions) or one user message (chat), max_tokens
// (max_completion_tokens for chat), and for streams stream_options.include_usage.
std::string request_body(const BodyParams& params, std::string_view prompt, int64_t max_tokens);

// Reads one response. Times are seconds since the request was sent. Feed every body piece with
// the time it arrived, then call finish() with the time the response ended.
class ResponseReader {
 public:
  explicit ResponseReader(ApiKind api) : api_(api) {}

  // Returns false when the response cannot be read (an SSE event over the size limit).
  bool feed(std::string_view piece, double now_s);
  // Fills `out` (success, ttft_s, itl_s, latency_s, tokens, text, error). `estimated_prompt_len`
  // stands in when the response carries no usage.
  void finish(double now_s, int64_t estimated_prompt_len, RequestOutput& out);

  void set_streaming(bool streaming) { streaming_ = streaming; }
  const std::string& text() const { return text_; }

 private:
  void on_event(std::string_view payload, double now_s);
  void on_json(std::string_view json, double now_s);

  ApiKind api_;
  bool streaming_ = true;
  http::SseParser sse_;
  std::vector<std::string> events_;
  std::string whole_body_;  // non-streaming responses
  std::string text_;
  std::string error_;
  bool done_ = false;  // [DONE] seen
  bool first_content_seen_ = false;
  double ttft_s_ = 0;
  double last_content_s_ = 0;
  std::vector<double> itl_s_;
  int64_t num_content_chunks_ = 0;
  std::optional<int64_t> usage_prompt_tokens_;
  std::optional<int64_t> usage_completion_tokens_;
};

// "HTTP 503: <error.message>" from an OpenAI error body (or its first bytes when not JSON).
std::string describe_http_error(int status, std::string_view body);

}  // namespace ondol::bench
