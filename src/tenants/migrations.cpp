#include "tenants/migrations.h"

#include <fmt/format.h>

#include "tenants/records.h"

namespace ondol::tenants {

namespace {

// Taken by pg_advisory_xact_lock while migrating ("ondol" in ASCII).
constexpr int64_t kMigrationLockId = 0x6f6e646f6c;

#define ONDOL_LIMIT_COLUMNS                                                             \
  "rpm_limit BIGINT, tpm_limit BIGINT, tpd_limit BIGINT, max_parallel_requests BIGINT, " \
  "max_budget DOUBLE PRECISION, budget_duration_s BIGINT, budget_reset_at BIGINT, "     \
  "spend DOUBLE PRECISION NOT NULL DEFAULT 0, "

}  // namespace

const std::vector<Migration>& schema_migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "keys, users, teams, spend logs",
       {
           "CREATE TABLE ondol_teams (team_id TEXT PRIMARY KEY, team_alias TEXT, tier TEXT, "
           "models TEXT NOT NULL DEFAULT '[]', " ONDOL_LIMIT_COLUMNS
           "metadata TEXT NOT NULL DEFAULT '{}', blocked INTEGER NOT NULL DEFAULT 0, "
           "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
           "CREATE TABLE ondol_users (user_id TEXT PRIMARY KEY, user_email TEXT, team_id TEXT, "
           "tier TEXT, models TEXT NOT NULL DEFAULT '[]', " ONDOL_LIMIT_COLUMNS
           "metadata TEXT NOT NULL DEFAULT '{}', "
           "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
           "CREATE TABLE ondol_keys (key_hash TEXT PRIMARY KEY, key_name TEXT NOT NULL, "
           "key_alias TEXT, user_id TEXT, team_id TEXT, tier TEXT, "
           "models TEXT NOT NULL DEFAULT '[]', " ONDOL_LIMIT_COLUMNS
           "metadata TEXT NOT NULL DEFAULT '{}', blocked INTEGER NOT NULL DEFAULT 0, "
           "expires_at BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
           "CREATE INDEX ondol_keys_user ON ondol_keys (user_id)",
           "CREATE INDEX ondol_keys_team ON ondol_keys (team_id)",
           "CREATE TABLE ondol_spend_logs (id TEXT PRIMARY KEY, request_id TEXT NOT NULL, "
           "key_hash TEXT, user_id TEXT, team_id TEXT, model TEXT, deployment TEXT, "
           "prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, "
           "total_tokens BIGINT NOT NULL, cost DOUBLE PRECISION NOT NULL, "
           "latency_ms DOUBLE PRECISION NOT NULL, status INTEGER NOT NULL, "
           "start_time BIGINT NOT NULL, end_time BIGINT NOT NULL)",
           "CREATE INDEX ondol_spend_logs_key ON ondol_spend_logs (key_hash, start_time)",
           "CREATE INDEX ondol_spend_logs_time ON ondol_spend_logs (start_time)",
       }},
      {2,
       "a generation bumped by every key change, which other instances poll",
       {
           "CREATE TABLE ondol_changes (id INTEGER PRIMARY KEY, generation BIGINT NOT NULL)",
           "INSERT INTO ondol_changes (id, generation) VALUES (1, 0)",
       }},
  };
  return kMigrations;
}

#undef ONDOL_LIMIT_COLUMNS

Result<int> migrate(SqlConnection& db, const std::vector<Migration>& migrations) {
  bool postgres = std::string_view(db.dialect()) == "postgres";
  auto created = db.exec(
      "CREATE TABLE IF NOT EXISTS ondol_schema_version (version INTEGER PRIMARY KEY, "
      "description TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  if (!created) return created.error();
  int current = 0;
  for (const Migration& m : migrations) {
    // SQLite: BEGIN IMMEDIATE takes the write lock, so two processes cannot both apply m.
    auto begun = db.exec(postgres ? "BEGIN" : "BEGIN IMMEDIATE");
    if (!begun) return begun.error();
    auto fail = [&db](const Error& e, const Migration& mig) -> Error {
      (void)db.exec("ROLLBACK");
      return make_error(fmt::format("schema migration {} ({}): {}", mig.version, mig.description,
                                    e.message));
    };
    if (postgres) {
      auto locked = db.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLockId));
      if (!locked) return fail(locked.error(), m);
    }
    auto applied = db.exec("SELECT version FROM ondol_schema_version WHERE version = $1",
                           {std::to_string(m.version)});
    if (!applied) return fail(applied.error(), m);
    if (applied->rows.empty()) {
      for (const std::string& statement : m.statements) {
        auto done = db.exec(statement);
        if (!done) return fail(done.error(), m);
      }
      auto recorded = db.exec(
          "INSERT INTO ondol_schema_version (version, description, applied_at) "
          "VALUES ($1, $2, $3)",
          {std::to_string(m.version), m.description, std::to_string(now_ms())});
      if (!recorded) return fail(recorded.error(), m);
    }
    auto committed = db.exec("COMMIT");
    if (!committed) return fail(committed.error(), m);
    current = m.version;
  }
  auto newest = db.exec("SELECT MAX(version) FROM ondol_schema_version");
  if (!newest) return newest.error();
  int in_db = newest->rows.empty() || !newest->rows[0][0] ? 0 : std::stoi(*newest->rows[0][0]);
  if (in_db > current) {
    return make_error(fmt::format("the database schema is version {}, newer than this ondol "
                                  "knows ({}); upgrade ondol",
                                  in_db, current));
  }
  return current;
}

}  // namespace ondol::tenants
