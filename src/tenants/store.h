// TenantStore: keys, users, teams and the spend log in a SQL database (SQLite or PostgreSQL,
// through SqlConnection). Blocking; one store per thread that uses it (each owns a connection).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tenants/records.h"
#include "tenants/sql_connection.h"

namespace ondol::tenants {

struct KeyFilter {
  std::optional<std::string> user_id;
  std::optional<std::string> team_id;
  int64_t page = 1;   // 1-based
  int64_t size = 100;
};

struct SpendFilter {
  std::optional<std::string> key_hash;
  std::optional<std::string> user_id;
  std::optional<std::string> team_id;
  std::optional<std::string> request_id;
  std::optional<int64_t> start_ms;  // start_time >= this
  std::optional<int64_t> end_ms;    // start_time < this
  int64_t limit = 10000;  // oldest first
};

class TenantStore {
 public:
  // database_url: "postgresql://..." or "postgres://..." → PostgreSQL; otherwise a SQLite file
  // path ("sqlite:///abs/path.db" or a plain path). Does not migrate.
  static Result<std::unique_ptr<TenantStore>> open(const std::string& database_url);
  explicit TenantStore(std::unique_ptr<SqlConnection> db) : db_(std::move(db)) {}

  Result<int> migrate();
  Status ping();

  Status insert_key(const KeyRecord& key);
  Result<std::optional<KeyRecord>> find_key(const std::string& key_hash);
  Result<std::optional<KeyRecord>> find_key_by_alias(const std::string& alias);
  // Writes every field of the record (read, change, write). Returns false if the key is gone.
  Result<bool> update_key(const KeyRecord& key);
  Result<int64_t> delete_key(const std::string& key_hash);
  // A counter that the updates and delete_key raise: an instance that sees it change drops its
  // cached keys, so a key changed on another instance stops answering as before within a poll.
  Result<int64_t> change_generation();
  Result<std::vector<KeyRecord>> list_keys(const KeyFilter& filter);

  Status insert_user(const UserRecord& user);  // fails if the user_id exists
  // Every field of the record (created_at kept, updated_at = now_ms); false when absent.
  Result<bool> update_user(const UserRecord& user, int64_t now_ms);
  Result<bool> update_team(const TeamRecord& team, int64_t now_ms);
  Result<std::optional<UserRecord>> find_user(const std::string& user_id);
  Status insert_team(const TeamRecord& team);
  Result<std::optional<TeamRecord>> find_team(const std::string& team_id);

  // Stores a batch in one transaction: records already stored (same id) are skipped, the others
  // add their cost to the spend of their key, user and team (resetting a spend whose budget
  // period has ended). Returns how many were new.
  Result<int64_t> write_spend(const std::vector<SpendRecord>& batch);
  Result<std::vector<SpendRecord>> spend_logs(const SpendFilter& filter);
  Result<int64_t> count_spend_logs();

  SqlConnection& connection() { return *db_; }

 private:
  void bump_change_generation();
  // UPDATE table SET (every column of `columns` but the first) WHERE (the first) = $1, params in
  // column order; raises the change generation when a row changed. True when one did.
  Result<bool> update_row(const char* table, const std::string& columns,
                          const std::vector<SqlValue>& params);
  Status add_spend(const char* table, const char* id_column, const std::string& id, double cost,
                   int64_t now);
  std::unique_ptr<SqlConnection> db_;
};

// Spend that counts against a budget now: zero once the period has ended but the reset has not
// been written yet.
double current_spend(const Limits& limits, int64_t now_ms);

}  // namespace ondol::tenants
