// StopMatcher: finds stop strings in streamed text that arrives piece by piece, releasing only
// text that cannot turn out to be the start of a stop string. Contract and tie-breaking:
// docs/engine-sampling-chat.md. One per sequence; not thread-safe.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ondol::engine {

struct StopMatcherOptions {
  bool include_stop_string = false;  // vLLM's include_stop_str_in_output
};

class StopMatcher {
 public:
  explicit StopMatcher(std::span<const std::string> stop_strings, StopMatcherOptions options = {});

  // Appends to `out` the part of `piece` (plus earlier held text) that is safe to release.
  // Returns true when a stop string completed: `out` then ends just before it (or after it,
  // with include_stop_string) and further pushes are ignored.
  bool push(std::string_view piece, std::string& out);
  // Releases the held-back text; call when generation ends for another reason.
  void flush(std::string& out);

  bool stopped() const { return matched_ >= 0; }
  // The stop string that ended the text; empty while not stopped.
  std::string_view matched_stop_string() const {
    return stopped() ? std::string_view(stops_[static_cast<size_t>(matched_)]) : std::string_view{};
  }
  size_t num_held_bytes() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  StopMatcherOptions options_;
  std::string held_;  // unreleased text: a proper prefix of some stop string, between pushes
  int matched_ = -1;
};

}  // namespace ondol::engine
