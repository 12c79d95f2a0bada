#include "tenants/store.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "tenants/migrations.h"
#include "tenants/postgres_connection.h"
#include "tenants/sqlite_connection.h"

namespace ondol::tenants {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double current_spend(const Limits& limits, int64_t now) {
  if (limits.budget_reset_at_ms && *limits.budget_reset_at_ms <= now) return 0;
  return limits.spend;
}

namespace {

constexpr const char* kLimitColumns =
    "rpm_limit, tpm_limit, tpd_limit, max_parallel_requests, max_budget, budget_duration_s, "
    "budget_reset_at, spend";
constexpr int kNumLimitColumns = 8;

std::string models_json(const std::vector<std::string>& models) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const auto& m : models) w.String(m.c_str(), static_cast<rapidjson::SizeType>(m.size()));
  w.EndArray();
  return buf.GetString();
}

std::vector<std::string> parse_models(const SqlValue& v) {
  std::vector<std::string> out;
  if (!v) return out;
  rapidjson::Document d;
  d.Parse(v->c_str());
  if (d.HasParseError() || !d.IsArray()) return out;
  for (const auto& m : d.GetArray())
    if (m.IsString()) out.emplace_back(m.GetString(), m.GetStringLength());
  return out;
}

std::optional<int64_t> opt_int(const SqlValue& v) {
  if (!v) return std::nullopt;
  return static_cast<int64_t>(std::stod(*v));  // SQLite may render an integer as "5.0"
}
std::optional<double> opt_double(const SqlValue& v) {
  if (!v) return std::nullopt;
  return std::stod(*v);
}
int64_t int_or(const SqlValue& v, int64_t fallback) { return v ? *opt_int(v) : fallback; }
std::string text_or_empty(const SqlValue& v) { return v ? *v : std::string(); }

void push_limits(std::vector<SqlValue>& p, const Limits& l) {
  p.push_back(sql_int(l.rpm_limit));
  p.push_back(sql_int(l.tpm_limit));
  p.push_back(sql_int(l.tpd_limit));
  p.push_back(sql_int(l.max_parallel_requests));
  p.push_back(sql_double(l.max_budget));
  p.push_back(sql_int(l.budget_duration_s));
  p.push_back(sql_int(l.budget_reset_at_ms));
  p.push_back(sql_double(l.spend));
}

Limits read_limits(const SqlRow& row, size_t at) {
  Limits l;
  l.rpm_limit = opt_int(row[at]);
  l.tpm_limit = opt_int(row[at + 1]);
  l.tpd_limit = opt_int(row[at + 2]);
  l.max_parallel_requests = opt_int(row[at + 3]);
  l.max_budget = opt_double(row[at + 4]);
  l.budget_duration_s = opt_int(row[at + 5]);
  l.budget_reset_at_ms = opt_int(row[at + 6]);
  l.spend = opt_double(row[at + 7]).value_or(0);
  return l;
}

// "$1, $2, ..., $n" starting at `first`.
std::string placeholders(int first, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += fmt::format("{}${}", i ? ", " : "", first + i);
  return out;
}

const std::string kKeyColumns = fmt::format(
    "key_hash, key_name, key_alias, user_id, team_id, tier, models, metadata, blocked, "
    "expires_at, created_at, updated_at, {}",
    kLimitColumns);
constexpr int kNumKeyColumns = 12 + kNumLimitColumns;

std::vector<SqlValue> key_params(const KeyRecord& k) {
  std::vector<SqlValue> p = {k.key_hash,
                             k.key_name,
                             k.key_alias,
                             k.user_id,
                             k.team_id,
                             k.tier,
                             models_json(k.models),
                             k.metadata,
                             k.blocked ? "1" : "0",
                             sql_int(k.expires_at_ms),
                             std::to_string(k.created_at_ms),
                             std::to_string(k.updated_at_ms)};
  push_limits(p, k.limits);
  return p;
}

KeyRecord read_key(const SqlRow& r) {
  KeyRecord k;
  k.key_hash = text_or_empty(r[0]);
  k.key_name = text_or_empty(r[1]);
  k.key_alias = r[2];
  k.user_id = r[3];
  k.team_id = r[4];
  k.tier = r[5];
  k.models = parse_models(r[6]);
  k.metadata = r[7] ? *r[7] : "{}";
  k.blocked = int_or(r[8], 0) != 0;
  k.expires_at_ms = opt_int(r[9]);
  k.created_at_ms = int_or(r[10], 0);
  k.updated_at_ms = int_or(r[11], 0);
  k.limits = read_limits(r, 12);
  return k;
}

const std::string kUserColumns = fmt::format(
    "user_id, user_email, team_id, tier, models, metadata, created_at, updated_at, {}",
    kLimitColumns);
const std::string kTeamColumns = fmt::format(
    "team_id, team_alias, tier, models, metadata, blocked, created_at, updated_at, {}",
    kLimitColumns);

const std::string kSpendColumns =
    "id, request_id, key_hash, user_id, team_id, model, deployment, prompt_tokens, "
    "completion_tokens, total_tokens, cost, latency_ms, status, start_time, end_time";

}  // namespace

Result<std::unique_ptr<TenantStore>> TenantStore::open(const std::string& database_url) {
  if (database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
    auto conn = PostgresConnection::open(database_url);
    if (!conn) return conn.error();
    return std::make_unique<TenantStore>(std::move(*conn));
  }
  std::string path = database_url;
  if (path.starts_with("sqlite://")) path = path.substr(9);
  auto conn = SqliteConnection::open(path);
  if (!conn) return conn.error();
  return std::make_unique<TenantStore>(std::move(*conn));
}

Result<int> TenantStore::migrate() { return tenants::migrate(*db_); }

Status TenantStore::ping() {
  auto r = db_->exec("SELECT 1");
  if (!r) return r.error();
  return Ok{};
}

Status TenantStore::insert_key(const KeyRecord& key) {
  auto r = db_->exec(fmt::format("INSERT INTO ondol_keys ({}) VALUES ({})", kKeyColumns,
                                 placeholders(1, kNumKeyColumns)),
                     key_params(key));
  if (!r) return r.error();
  return Ok{};
}

Result<std::optional<KeyRecord>> TenantStore::find_key(const std::string& key_hash) {
  auto r = db_->exec(fmt::format("SELECT {} FROM ondol_keys WHERE key_hash = $1", kKeyColumns),
                     {key_hash});
  if (!r) return r.error();
  if (r->rows.empty()) return std::optional<KeyRecord>();
  return std::optional<KeyRecord>(read_key(r->rows[0]));
}

Result<std::optional<KeyRecord>> TenantStore::find_key_by_alias(const std::string& alias) {
  auto r = db_->exec(fmt::format("SELECT {} FROM ondol_keys WHERE key_alias = $1", kKeyColumns),
                     {alias});
  if (!r) return r.error();
  if (r->rows.empty()) return std::optional<KeyRecord>();
  return std::optional<KeyRecord>(read_key(r->rows[0]));
}

namespace {

// "b = $2, c = $3, ..." for every column of `columns` but the first, which is $1 (the WHERE).
std::string set_all_but_first(const std::string& columns) {
  std::string sets;
  int index = 0;
  size_t begin = 0;
  while (begin < columns.size()) {
    size_t end = columns.find(',', begin);
    if (end == std::string::npos) end = columns.size();
    std::string name = columns.substr(begin, end - begin);
    name.erase(0, name.find_first_not_of(' '));
    if (++index > 1) sets += fmt::format("{}{} = ${}", index > 2 ? ", " : "", name, index);
    begin = end + 1;
  }
  return sets;
}

}  // namespace

Result<bool> TenantStore::update_row(const char* table, const std::string& columns,
                                     const std::vector<SqlValue>& params) {
  const std::string key_column = columns.substr(0, columns.find(','));
  auto r = db_->exec(
      fmt::format("UPDATE {} SET {} WHERE {} = $1", table, set_all_but_first(columns), key_column),
      params);
  if (!r) return r.error();
  if (r->affected > 0) bump_change_generation();
  return r->affected > 0;
}

Result<bool> TenantStore::update_key(const KeyRecord& key) {
  return update_row("ondol_keys", kKeyColumns, key_params(key));
}

Result<int64_t> TenantStore::delete_key(const std::string& key_hash) {
  auto r = db_->exec("DELETE FROM ondol_keys WHERE key_hash = $1", {key_hash});
  if (!r) return r.error();
  if (r->affected > 0) bump_change_generation();
  return r->affected;
}

// Best effort: the change itself is made; if the bump fails, other instances see the change when
// their cached entry expires (the key cache's TTL) instead of at their next poll.
void TenantStore::bump_change_generation() {
  auto r = db_->exec("UPDATE ondol_changes SET generation = generation + 1 WHERE id = 1");
  (void)r;
}

Result<int64_t> TenantStore::change_generation() {
  auto r = db_->exec("SELECT generation FROM ondol_changes WHERE id = 1");
  if (!r) return r.error();
  if (r->rows.empty()) return make_error("ondol_changes has no row");
  return int_or(r->rows[0][0], 0);
}

Result<std::vector<KeyRecord>> TenantStore::list_keys(const KeyFilter& f) {
  std::string where = "WHERE 1 = 1";
  std::vector<SqlValue> p;
  if (f.user_id) {
    p.push_back(*f.user_id);
    where += fmt::format(" AND user_id = ${}", p.size());
  }
  if (f.team_id) {
    p.push_back(*f.team_id);
    where += fmt::format(" AND team_id = ${}", p.size());
  }
  int64_t size = std::clamp<int64_t>(f.size, 1, 1000);
  int64_t offset = (std::max<int64_t>(f.page, 1) - 1) * size;
  auto r = db_->exec(fmt::format("SELECT {} FROM ondol_keys {} ORDER BY created_at, key_hash "
                                 "LIMIT {} OFFSET {}",
                                 kKeyColumns, where, size, offset),
                     p);
  if (!r) return r.error();
  std::vector<KeyRecord> out;
  for (const auto& row : r->rows) out.push_back(read_key(row));
  return out;
}

Status TenantStore::insert_user(const UserRecord& u) {
  std::vector<SqlValue> p = {u.user_id,   u.user_email, u.team_id,
                             u.tier,      models_json(u.models), u.metadata,
                             std::to_string(u.created_at_ms), std::to_string(u.created_at_ms)};
  push_limits(p, u.limits);
  auto r = db_->exec(fmt::format("INSERT INTO ondol_users ({}) VALUES ({})", kUserColumns,
                                 placeholders(1, 8 + kNumLimitColumns)),
                     p);
  if (!r) return r.error();
  return Ok{};
}

Result<bool> TenantStore::update_user(const UserRecord& u, int64_t now_ms) {
  std::vector<SqlValue> p = {u.user_id,
                             u.user_email,
                             u.team_id,
                             u.tier,
                             models_json(u.models),
                             u.metadata,
                             std::to_string(u.created_at_ms),
                             std::to_string(now_ms)};
  push_limits(p, u.limits);
  return update_row("ondol_users", kUserColumns, p);
}

Result<std::optional<UserRecord>> TenantStore::find_user(const std::string& user_id) {
  auto r = db_->exec(fmt::format("SELECT {} FROM ondol_users WHERE user_id = $1", kUserColumns),
                     {user_id});
  if (!r) return r.error();
  if (r->rows.empty()) return std::optional<UserRecord>();
  const SqlRow& row = r->rows[0];
  UserRecord u;
  u.user_id = text_or_empty(row[0]);
  u.user_email = row[1];
  u.team_id = row[2];
  u.tier = row[3];
  u.models = parse_models(row[4]);
  u.metadata = row[5] ? *row[5] : "{}";
  u.created_at_ms = int_or(row[6], 0);
  u.limits = read_limits(row, 8);
  return std::optional<UserRecord>(std::move(u));
}

Status TenantStore::insert_team(const TeamRecord& t) {
  std::vector<SqlValue> p = {t.team_id,  t.team_alias, t.tier,
                             models_json(t.models), t.metadata, t.blocked ? "1" : "0",
                             std::to_string(t.created_at_ms), std::to_string(t.created_at_ms)};
  push_limits(p, t.limits);
  auto r = db_->exec(fmt::format("INSERT INTO ondol_teams ({}) VALUES ({})", kTeamColumns,
                                 placeholders(1, 8 + kNumLimitColumns)),
                     p);
  if (!r) return r.error();
  return Ok{};
}

Result<bool> TenantStore::update_team(const TeamRecord& t, int64_t now_ms) {
  std::vector<SqlValue> p = {t.team_id,
                             t.team_alias,
                             t.tier,
                             models_json(t.models),
                             t.metadata,
                             t.blocked ? "1" : "0",
                             std::to_string(t.created_at_ms),
                             std::to_string(now_ms)};
  push_limits(p, t.limits);
  return update_row("ondol_teams", kTeamColumns, p);
}

Result<std::optional<TeamRecord>> TenantStore::find_team(const std::string& team_id) {
  auto r = db_->exec(fmt::format("SELECT {} FROM ondol_teams WHERE team_id = $1", kTeamColumns),
                     {team_id});
  if (!r) return r.error();
  if (r->rows.empty()) return std::optional<TeamRecord>();
  const SqlRow& row = r->rows[0];
  TeamRecord t;
  t.team_id = text_or_empty(row[0]);
  t.team_alias = row[1];
  t.tier = row[2];
  t.models = parse_models(row[3]);
  t.metadata = row[4] ? *row[4] : "{}";
  t.blocked = int_or(row[5], 0) != 0;
  t.created_at_ms = int_or(row[6], 0);
  t.limits = read_limits(row, 8);
  return std::optional<TeamRecord>(std::move(t));
}

Status TenantStore::add_spend(const char* table, const char* id_column, const std::string& id,
                              double cost, int64_t now) {
  // A spend whose budget period has ended starts again from this cost, and the next reset moves
  // one period on from now.
  auto r = db_->exec(
      fmt::format("UPDATE {0} SET "
                  "spend = CASE WHEN budget_reset_at IS NOT NULL AND budget_reset_at <= "
                  "CAST($2 AS BIGINT) THEN CAST($3 AS DOUBLE PRECISION) "
                  "ELSE spend + CAST($3 AS DOUBLE PRECISION) END, "
                  "budget_reset_at = CASE WHEN budget_reset_at IS NOT NULL AND budget_reset_at "
                  "<= CAST($2 AS BIGINT) THEN CAST($2 AS BIGINT) + budget_duration_s * 1000 "
                  "ELSE budget_reset_at END "
                  "WHERE {1} = $1",
                  table, id_column),
      {id, std::to_string(now), sql_double(cost)});
  if (!r) return r.error();
  return Ok{};
}

Result<int64_t> TenantStore::write_spend(const std::vector<SpendRecord>& batch) {
  if (batch.empty()) return int64_t{0};
  auto begun = db_->exec("BEGIN");
  if (!begun) return begun.error();
  int64_t inserted = 0;
  int64_t now = now_ms();
  auto rollback = [this](const Error& e) -> Error {
    (void)db_->exec("ROLLBACK");
    return e;
  };
  const std::string insert =
      fmt::format("INSERT INTO ondol_spend_logs ({}) VALUES ({}) ON CONFLICT (id) DO NOTHING",
                  kSpendColumns, placeholders(1, 15));
  for (const SpendRecord& s : batch) {
    std::vector<SqlValue> p = {s.id,
                               s.request_id,
                               s.key_hash.empty() ? SqlValue() : SqlValue(s.key_hash),
                               s.user_id.empty() ? SqlValue() : SqlValue(s.user_id),
                               s.team_id.empty() ? SqlValue() : SqlValue(s.team_id),
                               s.model,
                               s.deployment,
                               std::to_string(s.prompt_tokens),
                               std::to_string(s.completion_tokens),
                               std::to_string(s.prompt_tokens + s.completion_tokens),
                               sql_double(s.cost),
                               sql_double(s.latency_ms),
                               std::to_string(s.status),
                               std::to_string(s.start_time_ms),
                               std::to_string(s.end_time_ms)};
    auto r = db_->exec(insert, p);
    if (!r) return rollback(r.error());
    if (r->affected == 0 || s.cost == 0) {
      inserted += r->affected;
      continue;
    }
    ++inserted;
    if (!s.key_hash.empty()) {
      if (Status st = add_spend("ondol_keys", "key_hash", s.key_hash, s.cost, now); !st)
        return rollback(st.error());
    }
    if (!s.user_id.empty()) {
      if (Status st = add_spend("ondol_users", "user_id", s.user_id, s.cost, now); !st)
        return rollback(st.error());
    }
    if (!s.team_id.empty()) {
      if (Status st = add_spend("ondol_teams", "team_id", s.team_id, s.cost, now); !st)
        return rollback(st.error());
    }
  }
  auto committed = db_->exec("COMMIT");
  if (!committed) return rollback(committed.error());
  return inserted;
}

Result<std::vector<SpendRecord>> TenantStore::spend_logs(const SpendFilter& f) {
  std::string where = "WHERE 1 = 1";
  std::vector<SqlValue> p;
  auto add = [&](const char* column, const char* op, SqlValue v) {
    p.push_back(std::move(v));
    where += fmt::format(" AND {} {} ${}", column, op, p.size());
  };
  if (f.key_hash) add("key_hash", "=", *f.key_hash);
  if (f.user_id) add("user_id", "=", *f.user_id);
  if (f.team_id) add("team_id", "=", *f.team_id);
  if (f.request_id) add("request_id", "=", *f.request_id);
  if (f.start_ms) add("start_time", ">=", std::to_string(*f.start_ms));
  if (f.end_ms) add("start_time", "<", std::to_string(*f.end_ms));
  auto r = db_->exec(fmt::format("SELECT {} FROM ondol_spend_logs {} ORDER BY start_time, id "
                                 "LIMIT {}",
                                 kSpendColumns, where, std::clamp<int64_t>(f.limit, 1, 100000)),
                     p);
  if (!r) return r.error();
  std::vector<SpendRecord> out;
  for (const SqlRow& row : r->rows) {
    SpendRecord s;
    s.id = text_or_empty(row[0]);
    s.request_id = text_or_empty(row[1]);
    s.key_hash = text_or_empty(row[2]);
    s.user_id = text_or_empty(row[3]);
    s.team_id = text_or_empty(row[4]);
    s.model = text_or_empty(row[5]);
    s.deployment = text_or_empty(row[6]);
    s.prompt_tokens = int_or(row[7], 0);
    s.completion_tokens = int_or(row[8], 0);
    s.cost = opt_double(row[10]).value_or(0);
    s.latency_ms = opt_double(row[11]).value_or(0);
    s.status = static_cast<int>(int_or(row[12], 0));
    s.start_time_ms = int_or(row[13], 0);
    s.end_time_ms = int_or(row[14], 0);
    out.push_back(std::move(s));
  }
  return out;
}

Result<int64_t> TenantStore::count_spend_logs() {
  auto r = db_->exec("SELECT COUNT(*) FROM ondol_spend_logs");
  if (!r) return r.error();
  return int_or(r->rows[0][0], 0);
}

}  // namespace ondol::tenants
