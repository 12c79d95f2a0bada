#include "limits/limit_spec.h"

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
  for_each_ratelimit_header(decision, [&out](std::string_view name, std::string value) {
    out.emplace_back(std::string(name), std::move(value));
  });
  return out;
}

}  // namespace ondol::limits
