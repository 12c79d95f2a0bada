// What a rate limit is and what a limiter answers. A request comes with every limit that applies
// to it (its key's, user's, team's and tier's; requests/min, tokens/min, tokens/day) and is
// admitted only when all of them have room; see docs/limits.md.
#pragma once

#include <cstdint>
#include <string>
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
};

inline LimitSpec requests_per_minute(std::string scope, int64_t limit) {
  return {.scope = std::move(scope),
          .unit = LimitUnit::Requests,
          .limit = limit,
          .window_ms = kMinuteMs};
}
inline LimitSpec tokens_per_minute(std::string scope, int64_t limit) {
  return {
      .scope = std::move(scope), .unit = LimitUnit::Tokens, .limit = limit, .window_ms = kMinuteMs};
}
inline LimitSpec tokens_per_day(std::string scope, int64_t limit) {
  return {
      .scope = std::move(scope), .unit = LimitUnit::Tokens, .limit = limit, .window_ms = kDayMs};
}

// The name of the counter a spec counts in: "<scope>|<unit>|<window_ms>".
std::string counter_key(const LimitSpec& spec);

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

}  // namespace ondol::limits
