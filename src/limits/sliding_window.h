// The sliding window counter, as pure arithmetic over a counter and a time passed in: no clock,
// no locks, no I/O, so that the in-process limiter, the Redis limiter (whose Lua script mirrors
// roll and fits) and the tests share one definition. docs/limits.md explains the choice.
//
// A window of `window_ms` starts at floor(now / window_ms) * window_ms (Unix ms). At `e` ms into
// the current window, usage = current + previous * (window_ms - e) / window_ms.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "limits/limit_spec.h"

namespace ondol::limits {

struct WindowCounter {
  int64_t window_start_ms = 0;  // start of the window `current` counts
  int64_t current = 0;          // may be negative after a refund
  int64_t previous = 0;         // the window before it
};

int64_t window_start_for(int64_t now_ms, int64_t window_ms);

// Moves the counter to the window holding now_ms: at the next window `current` becomes
// `previous`; after a longer gap both are zero. A counter already there is unchanged.
void roll(WindowCounter& c, int64_t now_ms, int64_t window_ms);

struct WindowCheck {
  bool fits = true;
  bool too_large = false;      // cost > limit: never fits
  int64_t remaining = 0;       // after the charge if it fits, else before it; in [0, limit]
  int64_t retry_after_ms = 0;  // without further traffic, when the charge fits; 0 if it does
};

// Whether `cost` fits now. `c` must be rolled to now_ms. Exact in integers.
WindowCheck check(const WindowCounter& c, int64_t now_ms, int64_t window_ms, int64_t limit,
                  int64_t cost);

// Adds `delta` (actual - estimate; may be negative) to the window charged at
// `charged_window_start_ms`: current if it still is, previous if the window rolled once since,
// nothing if it is older (its count no longer matters).
void settle(WindowCounter& c, int64_t charged_window_start_ms, int64_t window_ms, int64_t delta);

// What a request charges to one limit: 1 request, or the token estimate.
int64_t cost_for(const LimitSpec& spec, int64_t estimated_tokens);

// The decision for a request from its counters rolled to now (parallel to `specs`), before any
// charge: admitted only if every limit fits. Does not charge; the ticket holds the token
// counters and windows the caller charges when admitted.
Decision evaluate(std::span<const WindowCounter> rolled, const std::vector<LimitSpec>& specs,
                  int64_t estimated_tokens, int64_t now_ms);

}  // namespace ondol::limits
