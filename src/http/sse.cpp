#include "http/sse.h"

namespace ondol::http {
namespace {

// Finds the end of the first event: a blank line, "\n\n", "\r\n\r\n" or "\r\r".
// Returns {event_end, separator_length} or {npos, 0}.
std::pair<size_t, size_t> find_event_end(std::string_view s) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == '\n' && s[i + 1] == '\n') return {i, 2};
    if (s[i] == '\r' && s[i + 1] == '\n') {
      if (i + 3 < s.size() && s[i + 2] == '\r' && s[i + 3] == '\n') return {i, 4};
      continue;
    }
    if (s[i] == '\r' && s[i + 1] == '\r') return {i, 2};
  }
  return {std::string_view::npos, 0};
}

}  // namespace

void SseParser::finish_event(std::string_view event, std::vector<std::string>& events) {
  std::string data;
  bool has_data = false;
  while (!event.empty()) {
    size_t eol = event.find_first_of("\r\n");
    std::string_view line = event.substr(0, eol);
    if (eol == std::string_view::npos) {
      event = {};
    } else {
      size_t skip = (event[eol] == '\r' && eol + 1 < event.size() && event[eol + 1] == '\n') ? 2 : 1;
      event.remove_prefix(eol + skip);
    }
    if (!line.starts_with("data")) continue;
    std::string_view value;
    if (line.size() == 4) {
      value = {};
    } else if (line[4] == ':') {
      value = line.substr(5);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    } else {
      continue;  // a field named e.g. "dataset": not ours
    }
    if (has_data) data.push_back('\n');
    data.append(value);
    has_data = true;
  }
  if (has_data) events.push_back(std::move(data));
}

bool SseParser::feed(std::string_view bytes, std::vector<std::string>& events) {
  events.clear();
  // Fast path: nothing held back and the piece holds only whole events.
  std::string_view view;
  if (buffer_.empty()) {
    view = bytes;
  } else {
    buffer_.append(bytes);
    view = buffer_;
  }
  size_t consumed = 0;
  for (;;) {
    auto [end, sep] = find_event_end(view.substr(consumed));
    if (end == std::string_view::npos) break;
    finish_event(view.substr(consumed, end), events);
    consumed += end + sep;
  }
  std::string rest(view.substr(consumed));
  buffer_ = std::move(rest);
  return buffer_.size() <= kMaxEventBytes;
}

void append_sse_data(std::string& out, std::string_view payload) {
  out.append("data: ").append(payload).append("\n\n");
}

}  // namespace ondol::http
