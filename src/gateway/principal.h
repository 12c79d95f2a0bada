// Who is calling: the result of authenticating a request, carried from Gateway::handle to the
// proxy. The master key (or no auth at all) is an unlimited principal; a virtual key brings its
// own restrictions and limits and those of its user, team and tier. Tenancy (src/tenants) fills
// it in; the proxy reads it for model access, rate limits, budgets and spend records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "limits/limit_spec.h"

namespace ondol::gateway {

// One scope's limits (a key, its user, its team or its tier). Unset: no limit at that scope.
struct ScopeLimits {
  std::string scope;                 // "key:<hash>", "user:<id>", "team:<id>", "tier:<name>"
  std::optional<int64_t> rpm;        // requests per minute
  std::optional<int64_t> tpm;        // tokens per minute
  std::optional<int64_t> tpd;        // tokens per day
  std::optional<int> max_parallel_requests;
  std::optional<double> max_budget;  // USD within budget_duration (or ever)
  double spend = 0;                  // USD spent in the current budget period
};

// The rate limits of `scopes` (rpm, tpm, tpd of each, in order), their counters named.
inline std::vector<limits::LimitSpec> rate_limit_specs(const std::vector<ScopeLimits>& scopes) {
  std::vector<limits::LimitSpec> specs;
  for (const ScopeLimits& l : scopes) {
    if (l.rpm) specs.push_back(limits::requests_per_minute(l.scope, *l.rpm));
    if (l.tpm) specs.push_back(limits::tokens_per_minute(l.scope, *l.tpm));
    if (l.tpd) specs.push_back(limits::tokens_per_day(l.scope, *l.tpd));
  }
  return specs;
}

struct Principal;

// A finished API request as the proxy saw it, reported to the Principal's usage sink (the spend
// log). Views are valid during the call only.
struct UsageReport {
  std::string_view request_id;
  std::string_view model;       // as requested
  std::string_view deployment;  // id of the deployment that served it (or was tried last)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost = 0;              // USD: the deployment's input/output_cost_per_token x tokens
  double latency_seconds = 0;
  int status = 0;               // the status sent to the client (499: the client went away)
};

class UsageSink {
 public:
  virtual ~UsageSink() = default;
  // Called on the request's I/O thread: must not block (the spend log queues it).
  virtual void on_request_done(const Principal& principal, const UsageReport& report) = 0;
};

struct Principal {
  enum class Kind { Anonymous, MasterKey, VirtualKey };
  Kind kind = Kind::Anonymous;      // Anonymous: auth is off (no master key configured)
  std::string key_hash;             // SHA-256 hex of the virtual key; empty otherwise
  std::string key_alias;
  std::string user_id;
  std::string team_id;
  std::string tier;
  std::vector<std::string> models;  // allowed model names; empty: all
  std::vector<ScopeLimits> limits;  // key first, then user, team, tier
  // rate_limit_specs(limits), built once with the principal rather than for every request.
  std::vector<limits::LimitSpec> rate_limits;
  UsageSink* usage_sink = nullptr;  // where the proxy reports the finished request; null: nowhere

  bool is_admin() const { return kind != Kind::VirtualKey; }
  bool may_use(const std::string& model) const {
    if (models.empty()) return true;
    for (const std::string& m : models)
      if (m == model) return true;
    return false;
  }
};

}  // namespace ondol::gateway
