// The rows of the tenant store, as native types: keys, users, teams and spend records. JSON
// lives in the admin API (src/gateway/tenant_api.cpp); these structs never see it, except
// `metadata`, which is stored and returned as the JSON text the caller sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ondol::tenants {

// Limits and budget shared by keys, users and teams. Unset: no limit at this scope.
struct Limits {
  std::optional<int64_t> rpm_limit;
  std::optional<int64_t> tpm_limit;
  std::optional<int64_t> tpd_limit;
  std::optional<int64_t> max_parallel_requests;
  std::optional<double> max_budget;           // USD
  std::optional<int64_t> budget_duration_s;   // spend resets every this many seconds; unset: never
  std::optional<int64_t> budget_reset_at_ms;  // Unix ms of the next reset
  double spend = 0;                           // USD since the last reset
};

struct KeyRecord {
  std::string key_hash;  // SHA-256 hex; the key itself is never stored
  std::string key_name;  // "sk-...AbCd"
  std::optional<std::string> key_alias;
  std::optional<std::string> user_id;
  std::optional<std::string> team_id;
  std::optional<std::string> tier;
  std::vector<std::string> models;  // empty: all
  Limits limits;
  std::string metadata = "{}";      // JSON object text
  bool blocked = false;
  std::optional<int64_t> expires_at_ms;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

struct UserRecord {
  std::string user_id;
  std::optional<std::string> user_email;
  std::optional<std::string> team_id;
  std::optional<std::string> tier;
  std::vector<std::string> models;
  Limits limits;
  std::string metadata = "{}";
  int64_t created_at_ms = 0;
};

struct TeamRecord {
  std::string team_id;
  std::optional<std::string> team_alias;
  std::optional<std::string> tier;
  std::vector<std::string> models;
  Limits limits;
  std::string metadata = "{}";
  bool blocked = false;
  int64_t created_at_ms = 0;
};

// One finished API request. `id` is unique per record (the spend log's primary key), so that a
// batch written twice after a failure is stored once.
struct SpendRecord {
  std::string id;
  std::string request_id;
  std::string key_hash;  // empty: the master key or no auth
  std::string user_id;
  std::string team_id;
  std::string model;       // as requested
  std::string deployment;  // the deployment id that served it
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost = 0;         // USD
  double latency_ms = 0;
  int status = 0;
  int64_t start_time_ms = 0;
  int64_t end_time_ms = 0;
};

int64_t now_ms();

}  // namespace ondol::tenants
