#include "limits/sliding_window.h"

#include <algorithm>
#include <cassert>

namespace ondol::limits {

namespace {

using i128 = __int128;

int64_t floor_div(i128 a, i128 b) {
  assert(b > 0);
  i128 q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return static_cast<int64_t>(q);
}

}  // namespace

int64_t window_start_for(int64_t now_ms, int64_t window_ms) {
  assert(window_ms > 0);
  return floor_div(now_ms, window_ms) * window_ms;
}

void roll(WindowCounter& c, int64_t now_ms, int64_t window_ms) {
  int64_t start = window_start_for(now_ms, window_ms);
  if (start == c.window_start_ms) return;
  // A clock that went back a little keeps the newer window rather than losing its count.
  if (start < c.window_start_ms) return;
  c.previous = (start - c.window_start_ms == window_ms) ? c.current : 0;
  c.current = 0;
  c.window_start_ms = start;
}

WindowCheck check(const WindowCounter& c, int64_t now_ms, int64_t window_ms, int64_t limit,
                  int64_t cost) {
  const i128 w = window_ms;
  const i128 e = std::clamp<int64_t>(now_ms - c.window_start_ms, 0, window_ms);
  const i128 used_scaled = i128(c.previous) * (w - e) + i128(c.current) * w;  // usage * W
  const i128 limit_scaled = i128(limit) * w;
  WindowCheck out;
  if (used_scaled + i128(cost) * w <= limit_scaled) {
    out.fits = true;
    out.remaining = std::clamp<int64_t>(floor_div(limit_scaled - used_scaled - i128(cost) * w, w),
                                        0, std::max<int64_t>(0, limit));
    return out;
  }
  out.fits = false;
  out.remaining =
      std::clamp<int64_t>(floor_div(limit_scaled - used_scaled, w), 0, std::max<int64_t>(0, limit));
  if (cost > limit) {
    out.too_large = true;
    out.retry_after_ms = window_ms;
    return out;
  }
  if (c.current + cost <= limit) {
    // This window alone leaves room: wait until the previous window's weight has decayed to
    // previous * (W - e') <= room * W. previous > 0 here, otherwise the charge would fit.
    const i128 room = i128(limit) - c.current - cost;
    const int64_t e_needed = window_ms - floor_div(room * w, c.previous);
    out.retry_after_ms = std::max<int64_t>(1, e_needed - static_cast<int64_t>(e));
  } else {
    // Wait for the next window, where this window's count becomes `previous` and decays:
    // current * (W - g) + cost * W <= limit * W. current > limit - cost >= 0 here.
    const int64_t g = window_ms - floor_div((i128(limit) - cost) * w, c.current);
    out.retry_after_ms = (window_ms - static_cast<int64_t>(e)) + g;
  }
  return out;
}

void settle(WindowCounter& c, int64_t charged_window_start_ms, int64_t window_ms, int64_t delta) {
  if (c.window_start_ms == charged_window_start_ms) {
    c.current += delta;
  } else if (c.window_start_ms == charged_window_start_ms + window_ms) {
    c.previous += delta;
  }
}

int64_t cost_for(const LimitSpec& spec, int64_t estimated_tokens) {
  return spec.unit == LimitUnit::Requests ? 1 : std::max<int64_t>(0, estimated_tokens);
}

Decision evaluate(std::span<const WindowCounter> rolled, const std::vector<LimitSpec>& specs,
                  int64_t estimated_tokens, int64_t now_ms) {
  assert(rolled.size() == specs.size());
  Decision d;
  d.limits.reserve(specs.size());
  bool all_fit = true;
  for (size_t i = 0; i < specs.size(); ++i) {
    const LimitSpec& spec = specs[i];
    WindowCheck wc =
        check(rolled[i], now_ms, spec.window_ms, spec.limit, cost_for(spec, estimated_tokens));
    d.limits.push_back({.unit = spec.unit,
                        .limit = spec.limit,
                        .remaining = wc.remaining,
                        .retry_after_ms = wc.retry_after_ms,
                        .fits = wc.fits,
                        .too_large = wc.too_large});
    if (!wc.fits) {
      all_fit = false;
      d.retry_after_ms = std::max(d.retry_after_ms, wc.retry_after_ms);
      d.too_large = d.too_large || wc.too_large;
    }
  }
  if (!all_fit) {
    d.outcome = Outcome::Denied;
    return d;
  }
  d.outcome = Outcome::Admitted;
  d.retry_after_ms = 0;
  d.ticket.estimated_tokens = std::max<int64_t>(0, estimated_tokens);
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].unit != LimitUnit::Tokens) continue;
    d.ticket.tokens.push_back(
        {.counter_key = specs[i].counter.empty() ? counter_key(specs[i]) : specs[i].counter,
         .window_ms = specs[i].window_ms,
         .window_start_ms = rolled[i].window_start_ms});
  }
  return d;
}

}  // namespace ondol::limits
