// Who is calling: the result of authenticating a request, carried from Gateway::handle to the
// proxy. The master key (or no auth at all) is an unlimited principal; a virtual key brings its
// own restrictions and limits and those of its user, team and tier. Tenancy (src/tenants) fills
// it in; the proxy reads it for model access, rate limits, budgets and spend records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

  bool is_admin() const { return kind != Kind::VirtualKey; }
  bool may_use(const std::string& model) const {
    if (models.empty()) return true;
    for (const std::string& m : models)
      if (m == model) return true;
    return false;
  }
};

}  // namespace ondol::gateway
