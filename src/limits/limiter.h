// The interface the gateway calls per request: acquire before the work, settle after it. Both
// implementations (LocalLimiter in process, RedisLimiter shared by instances) give the same
// answers for the same counts; see docs/limits.md.
#pragma once

#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange (GCC 12)

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <vector>

#include "limits/limit_spec.h"

namespace ondol::limits {

class Limiter {
 public:
  virtual ~Limiter() = default;

  // Admits the request only if every limit in `limits` has room for its charge (1 per request
  // limit, `estimated_tokens` per token limit) and then charges all of them; when any refuses,
  // charges nothing. Never throws and never waits longer than the implementation's timeout.
  // `limits` must stay alive until the await completes.
  virtual boost::asio::awaitable<Decision> acquire(const std::vector<LimitSpec>& limits,
                                                   int64_t estimated_tokens) = 0;

  // Corrects the token counters charged by an admitted decision by actual - estimated (a
  // refund when negative). A ticket from a refused decision is empty and does nothing.
  virtual boost::asio::awaitable<void> settle(const Ticket& ticket, int64_t actual_tokens) = 0;
};

}  // namespace ondol::limits
