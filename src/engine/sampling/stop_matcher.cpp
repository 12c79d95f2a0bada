#include "engine/sampling/stop_matcher.h"

#include <algorithm>

namespace ondol::engine {

StopMatcher::StopMatcher(std::span<const std::string> stop_strings, StopMatcherOptions options)
    : options_(options) {
  size_t max_len = 0;
  for (const std::string& s : stop_strings) {
    if (s.empty()) continue;  // would match everywhere; validation refuses it upstream
    stops_.push_back(s);
    max_len = std::max(max_len, s.size());
  }
  held_.reserve(max_len * 2);
}

bool StopMatcher::push(std::string_view piece, std::string& out) {
  if (stopped()) return true;
  if (stops_.empty()) {
    out.append(piece);
    return false;
  }
  held_.append(piece);

  // Between pushes held_ contains no whole stop string, so a match must end in the new piece;
  // held_ is short (shorter than the longest stop string plus one piece), so search it all.
  // The stop string that completes first wins (smallest end), then the one starting first:
  // the same answer as checking after every character, whatever the split into pieces.
  size_t best_pos = std::string::npos;
  size_t best_end = std::string::npos;
  int best = -1;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t pos = held_.find(stops_[i]);
    if (pos == std::string::npos) continue;
    const size_t end = pos + stops_[i].size();
    if (end < best_end || (end == best_end && pos < best_pos)) {
      best_pos = pos;
      best_end = end;
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) {
    matched_ = best;
    const size_t keep =
        best_pos + (options_.include_stop_string ? stops_[static_cast<size_t>(best)].size() : 0);
    out.append(held_, 0, keep);
    held_.clear();
    return true;
  }

  // Hold back the longest suffix of held_ that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    const size_t longest = std::min(s.size() - 1, held_.size());
    for (size_t len = longest; len > hold; --len) {
      if (std::string_view(held_).substr(held_.size() - len) ==
          std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  const size_t release = held_.size() - hold;
  out.append(held_, 0, release);
  held_.erase(0, release);
  return false;
}

void StopMatcher::flush(std::string& out) {
  if (stopped()) return;
  out.append(held_);
  held_.clear();
}

}  // namespace ondol::engine
