// Server-sent events: an incremental parser for what upstreams stream, and the writer side.
//
// The parser is fed arbitrary byte pieces (TCP reads split events anywhere) and yields each
// complete event's data payload. Only `data:` lines matter to OpenAI streams; `event:`, `id:`,
// `retry:` and comments are accepted and ignored. Multi-line data is joined with '\n' (per the
// SSE specification).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ondol::http {

class SseParser {
 public:
  // Limit on one event, so a misbehaving upstream cannot grow memory without bound.
  static constexpr size_t kMaxEventBytes = 4 << 20;

  // Appends the payloads of the events completed by `bytes` to `events` (cleared first).
  // Returns false when an event exceeds kMaxEventBytes (the stream should be abandoned).
  bool feed(std::string_view bytes, std::vector<std::string>& events);

  // Bytes of an incomplete event held back, waiting for its end.
  size_t pending_bytes() const { return buffer_.size(); }

 private:
  void finish_event(std::string_view event, std::vector<std::string>& events);

  std::string buffer_;
};

// "data: <payload>\n\n"
void append_sse_data(std::string& out, std::string_view payload);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace ondol::http
