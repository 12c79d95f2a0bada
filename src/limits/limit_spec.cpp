#include "limits/limit_spec.h"

#include <limits>

namespace ondol::limits {

const char* to_string(LimitUnit unit) {
  return unit == LimitUnit::Requests ? "requests" : "tokens";
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::Admitted:
      return "admitted";
    case Outcome::Denied:
      return "denied";
    case Outcome::Unavailable:
      return "unavailable";
  }
  return "?";
}

std::string counter_key(const LimitSpec& spec) {
  std::string key = spec.scope;
  key += '|';
  key += to_string(spec.unit);
  key += '|';
  key += std::to_string(spec.window_ms);
  return key;
}

int64_t Decision::retry_after_seconds() const {
  int64_t s = (retry_after_ms + 999) / 1000;
  return s < 1 ? 1 : s;
}

std::vector<std::pair<std::string, std::string>> ratelimit_headers(const Decision& decision) {
  std::vector<std::pair<std::string, std::string>> out;
  if (decision.outcome == Outcome::Unavailable) {  // the counts are unknown: say only when to retry
    out.emplace_back("retry-after", std::to_string(decision.retry_after_seconds()));
    return out;
  }
  const LimitStatus* tightest[2] = {nullptr, nullptr};  // requests, tokens
  for (const LimitStatus& s : decision.limits) {
    const LimitStatus*& t = tightest[s.unit == LimitUnit::Requests ? 0 : 1];
    if (t == nullptr || s.remaining < t->remaining) t = &s;
  }
  if (tightest[0] != nullptr) {
    out.emplace_back("x-ratelimit-limit-requests", std::to_string(tightest[0]->limit));
    out.emplace_back("x-ratelimit-remaining-requests", std::to_string(tightest[0]->remaining));
  }
  if (tightest[1] != nullptr) {
    out.emplace_back("x-ratelimit-limit-tokens", std::to_string(tightest[1]->limit));
    out.emplace_back("x-ratelimit-remaining-tokens", std::to_string(tightest[1]->remaining));
  }
  if (!decision.admitted()) {
    out.emplace_back("retry-after", std::to_string(decision.retry_after_seconds()));
  }
  return out;
}

}  // namespace ondol::limits
