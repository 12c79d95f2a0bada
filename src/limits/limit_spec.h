// What a rate limit is and what a limiter answers. A request comes with every limit that applies
// to it (its key's, user's, team's and tier's; requests/min, tokens/min, tokens/day) and is
// admitted only when all of them have room; see docs/limits.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ondol::limits {

enum class LimitUnit { Requests, Tokens };

const char* to_string(LimitUnit unit);

inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kDayMs = 86'400'000;

// One limit: at most `limit` units per sliding window of `window_ms`. `scope` names who is
// limited ("key:<sha256>", "user:<id>", "team:<id>", "tier:<name>"); it is built by the caller
// from bounded values. The specs of one request must name distinct counters.
struct LimitSpec {
  std::string scope;
  LimitUnit unit = LimitUnit::Requests;
  int64_t limit = 0;  // units per window; 0 admits nothing
  int64_t window_ms = kMinuteMs;
  // counter_key(*this), named once by the factories below so that a spec kept for many requests
  // (a key's limits, cached with the key) does not build it again for each; empty: built when
  // needed.
  std::string counter;
};

// The name of the counter a spec counts in: "<scope>|<unit>|<window_ms>".
std::string counter_key(const LimitSpec& spec);

// The spec's counter name: `counter` when set, else counter_key() built into `scratch`.
inline std::string_view counter_of(const LimitSpec& spec, std::string& scratch) {
  if (!spec.counter.empty()) return spec.counter;
  scratch = counter_key(spec);
  return scratch;
}

inline LimitSpec named(LimitSpec spec) {
  spec.counter = counter_key(spec);
  return spec;
}
inline LimitSpec requests_per_minute(std::string scope, int64_t limit) {
  return named({.scope = std::move(scope),
                .unit = LimitUnit::Requests,
                .limit = limit,
                .window_ms = kMinuteMs});
}
inline LimitSpec tokens_per_minute(std::string scope, int64_t limit) {
  return named({.scope = std::move(scope),
                .unit = LimitUnit::Tokens,
                .limit = limit,
                .window_ms = kMinuteMs});
}
inline LimitSpec tokens_per_day(std::string scope, int64_t limit) {
  return named(
      {.scope = std::move(scope), .unit = LimitUnit::Tokens, .limit = limit, .window_ms = kDayMs});
}

// What one request charged to token counters, so that settle() corrects the same counters in
// the same windows. Request counters are never settled.
struct Ticket {
  enum class Source { None, Local, Redis };
  struct Entry {
    std::string counter_key;
    int64_t window_ms = 0;
    int64_t window_start_ms = 0;  // the window the estimate was charged in
  };
  Source source = Source::None;
  int64_t estimated_tokens = 0;
  std::vector<Entry> tokens;
};

enum class Outcome {
  Admitted,     // every limit had room; all were charged
  Denied,       // some limit had no room; nothing was charged (429)
  Unavailable,  // the shared counters could not be reached and the mode is fail-closed (503)
};

const char* to_string(Outcome outcome);

// One limit's state as seen by this request, parallel to the specs passed in.
struct LimitStatus {
  LimitUnit unit = LimitUnit::Requests;
  int64_t limit = 0;
  int64_t remaining = 0;       // after this request's charge when admitted, else before it
  int64_t retry_after_ms = 0;  // 0 when this limit has room
  bool fits = true;
  bool too_large = false;  // the charge alone exceeds the limit: waiting cannot help
};

struct Decision {
  Outcome outcome = Outcome::Admitted;
  std::vector<LimitStatus> limits;
  int64_t retry_after_ms = 0;  // the largest wait among refusing limits (0 when admitted)
  bool too_large = false;      // some charge can never fit: answer "request too large"
  bool degraded = false;       // decided in process because the shared store was unreachable
  Ticket ticket;               // what to settle; empty unless admitted

  bool admitted() const { return outcome == Outcome::Admitted; }
  // Retry-After in whole seconds: rounded up, at least 1.
  int64_t retry_after_seconds() const;
};

// The x-ratelimit-* headers (and Retry-After when not admitted) for a decision: the request
// limit and the token limit with the least remaining. Names are lower case, values decimal.
// An Unavailable decision gets Retry-After alone: its counts are unknown.
std::vector<std::pair<std::string, std::string>> ratelimit_headers(const Decision& decision);

// The same, passed one by one to `add(std::string_view name, std::string value)`: no list built.
template <class Add>
void for_each_ratelimit_header(const Decision& decision, Add&& add) {
  if (decision.outcome == Outcome::Unavailable) {  // the counts are unknown: say only when to retry
    add(std::string_view("retry-after"), std::to_string(decision.retry_after_seconds()));
    return;
  }
  const LimitStatus* tightest[2] = {nullptr, nullptr};  // requests, tokens
  for (const LimitStatus& s : decision.limits) {
    const LimitStatus*& t = tightest[s.unit == LimitUnit::Requests ? 0 : 1];
    if (t == nullptr || s.remaining < t->remaining) t = &s;
  }
  if (tightest[0] != nullptr) {
    add(std::string_view("x-ratelimit-limit-requests"), std::to_string(tightest[0]->limit));
    add(std::string_view("x-ratelimit-remaining-requests"), std::to_string(tightest[0]->remaining));
  }
  if (tightest[1] != nullptr) {
    add(std::string_view("x-ratelimit-limit-tokens"), std::to_string(tightest[1]->limit));
    add(std::string_view("x-ratelimit-remaining-tokens"), std::to_string(tightest[1]->remaining));
  }
  if (!decision.admitted()) {
    add(std::string_view("retry-after"), std::to_string(decision.retry_after_seconds()));
  }
}

}  // namespace ondol::limits
