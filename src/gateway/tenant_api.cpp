#include "gateway/tenant_api.h"

#include <ctime>
#include <random>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "openai/error.h"
#include "tenants/key_codec.h"

namespace ondol::gateway {

namespace {

using tenants::KeyRecord;
using tenants::Limits;
using tenants::TenantStore;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::string_view kPaths[] = {
    "/key/generate", "/key/info",   "/key/update",   "/key/delete",  "/key/list", "/key/block",
    "/key/unblock",  "/user/new",   "/user/info",    "/user/update", "/team/new", "/team/info",
    "/team/update",  "/team/block", "/team/unblock", "/spend/logs"};
constexpr std::string_view kGetPaths[] = {"/key/info", "/key/list", "/user/info", "/team/info",
                                          "/spend/logs"};

// What a handler sends back; built on the database thread.
struct Reply {
  int status = 200;
  std::string body;
};

Reply error_reply(const openai::ApiError& e) { return {e.status, e.to_json()}; }
Reply bad_request(std::string message, std::string param = {}) {
  return error_reply(openai::invalid_request(std::move(message), std::move(param)));
}
Reply not_found(std::string message) {
  return error_reply(openai::ApiError{404, std::move(message), "invalid_request_error", {},
                                      "not_found"});
}
Reply forbidden(std::string message) {
  return error_reply(
      openai::ApiError{403, std::move(message), "permission_error", {}, "forbidden"});
}
Reply db_error(const Error& e) {
  return error_reply(openai::service_unavailable("Database unavailable: " + e.message));
}

std::string iso8601(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

// A presented key or its SHA-256 hex (as /key/list returns them) → the hash.
std::string to_hash(const std::string& key_or_hash) {
  bool is_hash = key_or_hash.size() == 64 &&
                 key_or_hash.find_first_not_of("0123456789abcdef") == std::string::npos;
  return is_hash ? key_or_hash : tenants::hash_key(key_or_hash);
}

std::string random_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

// Reads typed fields out of a JSON object; the first problem is kept for the 400.
class BodyReader {
 public:
  explicit BodyReader(const rapidjson::Value& o) : o_(o) {}

  const rapidjson::Value* get(const char* name) const {
    auto it = o_.FindMember(name);
    return it == o_.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
  }
  void text(const char* name, std::optional<std::string>* out) {
    if (const auto* v = get(name)) {
      if (v->IsString()) *out = std::string(v->GetString(), v->GetStringLength());
      else fail(name, "must be a string");
    }
  }
  void integer(const char* name, std::optional<int64_t>* out) {
    if (const auto* v = get(name)) {
      if (v->IsNumber() && v->GetDouble() >= 0) *out = static_cast<int64_t>(v->GetDouble());
      else fail(name, "must be a number >= 0");
    }
  }
  void number(const char* name, std::optional<double>* out) {
    if (const auto* v = get(name)) {
      if (v->IsNumber() && v->GetDouble() >= 0) *out = v->GetDouble();
      else fail(name, "must be a number >= 0");
    }
  }
  void boolean(const char* name, std::optional<bool>* out) {
    if (const auto* v = get(name)) {
      if (v->IsBool()) *out = v->GetBool();
      else fail(name, "must be true or false");
    }
  }
  void strings(const char* name, std::optional<std::vector<std::string>>* out) {
    const auto* v = get(name);
    if (!v) return;
    if (!v->IsArray()) return fail(name, "must be a list of strings");
    std::vector<std::string> list;
    for (const auto& s : v->GetArray()) {
      if (!s.IsString()) return fail(name, "must be a list of strings");
      list.emplace_back(s.GetString(), s.GetStringLength());
    }
    *out = std::move(list);
  }
  void object_text(const char* name, std::optional<std::string>* out) {
    const auto* v = get(name);
    if (!v) return;
    if (!v->IsObject()) return fail(name, "must be an object");
    rapidjson::StringBuffer buf;
    Writer w(buf);
    v->Accept(w);
    *out = buf.GetString();
  }
  void duration(const char* name, std::optional<int64_t>* out) {
    const auto* v = get(name);
    if (!v) return;
    std::optional<int64_t> s;
    if (v->IsString()) s = parse_duration_seconds({v->GetString(), v->GetStringLength()});
    else if (v->IsNumber() && v->GetDouble() > 0) s = static_cast<int64_t>(v->GetDouble());
    if (!s) return fail(name, "must be a duration such as \"30s\", \"10m\", \"24h\" or \"30d\"");
    *out = s;
  }

  bool ok() const { return error_.empty(); }
  Reply error() const { return bad_request(error_, param_); }

 private:
  void fail(const char* name, std::string_view what) {
    if (!error_.empty()) return;
    error_ = fmt::format("'{}' {}.", name, what);
    param_ = name;
  }
  const rapidjson::Value& o_;
  std::string error_;
  std::string param_;
};

// The fields of /key/generate and /key/update (and the limits of /user/new, /team/new).
struct Edit {
  std::optional<std::string> key;  // a chosen key (generate only)
  std::optional<std::string> key_alias, user_id, team_id, tier, metadata, user_email, team_alias;
  std::optional<std::vector<std::string>> models;
  std::optional<int64_t> rpm_limit, tpm_limit, tpd_limit, max_parallel_requests;
  std::optional<double> max_budget, spend;
  std::optional<int64_t> budget_duration_s, duration_s;
  std::optional<bool> blocked, auto_create_key;
};

Edit read_edit(BodyReader& r) {
  Edit e;
  r.text("key", &e.key);
  r.text("key_alias", &e.key_alias);
  r.text("user_id", &e.user_id);
  r.text("team_id", &e.team_id);
  r.text("tier", &e.tier);
  r.text("user_email", &e.user_email);
  r.text("team_alias", &e.team_alias);
  r.object_text("metadata", &e.metadata);
  r.strings("models", &e.models);
  r.integer("rpm_limit", &e.rpm_limit);
  r.integer("tpm_limit", &e.tpm_limit);
  r.integer("tpd_limit", &e.tpd_limit);
  r.integer("max_parallel_requests", &e.max_parallel_requests);
  r.number("max_budget", &e.max_budget);
  r.number("spend", &e.spend);
  r.duration("budget_duration", &e.budget_duration_s);
  r.duration("duration", &e.duration_s);
  r.boolean("blocked", &e.blocked);
  r.boolean("auto_create_key", &e.auto_create_key);
  return e;
}

void apply_limits(const Edit& e, Limits& l, int64_t now) {
  if (e.rpm_limit) l.rpm_limit = e.rpm_limit;
  if (e.tpm_limit) l.tpm_limit = e.tpm_limit;
  if (e.tpd_limit) l.tpd_limit = e.tpd_limit;
  if (e.max_parallel_requests) l.max_parallel_requests = e.max_parallel_requests;
  if (e.max_budget) l.max_budget = e.max_budget;
  if (e.spend) l.spend = *e.spend;
  if (e.budget_duration_s) {
    l.budget_duration_s = e.budget_duration_s;
    l.budget_reset_at_ms = now + *e.budget_duration_s * 1000;
  }
}

void apply_key_edit(const Edit& e, KeyRecord& k, int64_t now) {
  if (e.key_alias) k.key_alias = e.key_alias;
  if (e.user_id) k.user_id = e.user_id;
  if (e.team_id) k.team_id = e.team_id;
  if (e.tier) k.tier = e.tier;
  if (e.models) k.models = *e.models;
  if (e.metadata) k.metadata = *e.metadata;
  if (e.blocked) k.blocked = *e.blocked;
  if (e.duration_s) k.expires_at_ms = now + *e.duration_s * 1000;
  apply_limits(e, k.limits, now);
  k.updated_at_ms = now;
}

void write_opt(Writer& w, const char* name, const std::optional<std::string>& v) {
  w.Key(name);
  if (v) w.String(v->c_str(), static_cast<rapidjson::SizeType>(v->size()));
  else w.Null();
}
void write_opt(Writer& w, const char* name, const std::optional<int64_t>& v) {
  w.Key(name);
  if (v) w.Int64(*v);
  else w.Null();
}
void write_opt(Writer& w, const char* name, const std::optional<double>& v) {
  w.Key(name);
  if (v) w.Double(*v);
  else w.Null();
}
void write_str(Writer& w, const char* name, const std::string& v) {
  w.Key(name);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}
void write_models(Writer& w, const std::vector<std::string>& models) {
  w.Key("models");
  w.StartArray();
  for (const auto& m : models) w.String(m.c_str(), static_cast<rapidjson::SizeType>(m.size()));
  w.EndArray();
}
void write_raw_json(Writer& w, const char* name, const std::string& json) {
  w.Key(name);
  w.RawValue(json.c_str(), json.size(), rapidjson::kObjectType);
}
void write_limits(Writer& w, const Limits& l) {
  write_opt(w, "rpm_limit", l.rpm_limit);
  write_opt(w, "tpm_limit", l.tpm_limit);
  write_opt(w, "tpd_limit", l.tpd_limit);
  write_opt(w, "max_parallel_requests", l.max_parallel_requests);
  write_opt(w, "max_budget", l.max_budget);
  w.Key("budget_duration");
  if (l.budget_duration_s) w.String(fmt::format("{}s", *l.budget_duration_s).c_str());
  else w.Null();
  w.Key("budget_reset_at");
  if (l.budget_reset_at_ms) w.String(iso8601(*l.budget_reset_at_ms).c_str());
  else w.Null();
  w.Key("spend");
  w.Double(tenants::current_spend(l, tenants::now_ms()));
}

// The fields of a key as /key/info's "info" and /key/generate's answer carry them.
void write_key_fields(Writer& w, const KeyRecord& k) {
  write_str(w, "token", k.key_hash);
  write_str(w, "key_name", k.key_name);
  write_opt(w, "key_alias", k.key_alias);
  write_opt(w, "user_id", k.user_id);
  write_opt(w, "team_id", k.team_id);
  write_opt(w, "tier", k.tier);
  write_models(w, k.models);
  write_limits(w, k.limits);
  write_raw_json(w, "metadata", k.metadata);
  w.Key("blocked");
  w.Bool(k.blocked);
  w.Key("expires");
  if (k.expires_at_ms) w.String(iso8601(*k.expires_at_ms).c_str());
  else w.Null();
  write_str(w, "created_at", iso8601(k.created_at_ms));
  write_str(w, "updated_at", iso8601(k.updated_at_ms));
}

std::string key_info_body(const std::string& key_param, const KeyRecord& k) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "key", key_param);
  w.Key("info");
  w.StartObject();
  write_key_fields(w, k);
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

// Creates a key from an edit (generate, and /user/new's key).
Result<std::pair<std::string, KeyRecord>> create_key(TenantStore& store, const Edit& e) {
  int64_t now = tenants::now_ms();
  std::string key = e.key ? *e.key : tenants::generate_key();
  KeyRecord k;
  k.key_hash = tenants::hash_key(key);
  k.key_name = tenants::key_display(key);
  k.created_at_ms = now;
  apply_key_edit(e, k, now);
  k.blocked = e.blocked.value_or(false);
  if (Status st = store.insert_key(k); !st) return st.error();
  return std::pair{std::move(key), std::move(k)};
}

// An edit naming a team that is not there (or a store that cannot say): the answer to give.
std::optional<Reply> check_team_exists(TenantStore& store, const Edit& e) {
  if (!e.team_id) return std::nullopt;
  auto team = store.find_team(*e.team_id);
  if (!team) return db_error(team.error());
  if (!*team) return bad_request(fmt::format("Team '{}' does not exist.", *e.team_id), "team_id");
  return std::nullopt;
}

Reply key_generate(TenantStore& store, const Edit& e) {
  if (e.key && (!e.key->starts_with(tenants::kKeyPrefix) || e.key->size() < 8))
    return bad_request("'key' must start with 'sk-' and be at least 8 characters.", "key");
  if (auto refused = check_team_exists(store, e)) return *refused;
  if (e.key) {
    auto existing = store.find_key(tenants::hash_key(*e.key));
    if (!existing) return db_error(existing.error());
    if (*existing) return bad_request("This key already exists.", "key");
  }
  auto created = create_key(store, e);
  if (!created) return db_error(created.error());
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "key", created->first);
  write_key_fields(w, created->second);
  w.EndObject();
  return {200, buf.GetString()};
}

Reply key_info(TenantStore& store, const std::string& key_param) {
  auto k = store.find_key(to_hash(key_param));
  if (!k) return db_error(k.error());
  if (!*k) return not_found("Key not found.");
  return {200, key_info_body(key_param, **k)};
}

Reply key_update(TenantStore& store, tenants::Tenancy& tenancy, const std::string& key_param,
                 const Edit& e) {
  std::string hash = to_hash(key_param);
  auto k = store.find_key(hash);
  if (!k) return db_error(k.error());
  if (!*k) return not_found("Key not found.");
  if (auto refused = check_team_exists(store, e)) return *refused;
  KeyRecord record = std::move(**k);
  apply_key_edit(e, record, tenants::now_ms());
  auto updated = store.update_key(record);
  tenancy.invalidate(hash);
  if (!updated) return db_error(updated.error());
  if (!*updated) return not_found("Key not found.");
  return {200, key_info_body(key_param, record)};
}

Reply key_delete(TenantStore& store, tenants::Tenancy& tenancy,
                 const std::vector<std::string>& keys, const std::vector<std::string>& aliases) {
  std::vector<std::string> hashes;
  for (const auto& k : keys) hashes.push_back(to_hash(k));
  for (const auto& a : aliases) {
    auto k = store.find_key_by_alias(a);
    if (!k) return db_error(k.error());
    if (*k) hashes.push_back((*k)->key_hash);
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("deleted_keys");
  w.StartArray();
  int64_t n = 0;
  for (const auto& h : hashes) {
    auto deleted = store.delete_key(h);
    tenancy.invalidate(h);
    if (!deleted) return db_error(deleted.error());
    if (*deleted > 0) {
      w.String(h.c_str());
      ++n;
    }
  }
  w.EndArray();
  w.EndObject();
  if (n == 0 && !hashes.empty()) return not_found("No such key.");
  return {200, buf.GetString()};
}

Reply key_list(TenantStore& store, const tenants::KeyFilter& filter, bool full) {
  auto keys = store.list_keys(filter);
  if (!keys) return db_error(keys.error());
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("keys");
  w.StartArray();
  for (const auto& k : *keys) {
    if (full) {
      w.StartObject();
      write_key_fields(w, k);
      w.EndObject();
    } else {
      w.String(k.key_hash.c_str());
    }
  }
  w.EndArray();
  w.Key("current_page");
  w.Int64(filter.page);
  w.Key("page_size");
  w.Int64(filter.size);
  w.EndObject();
  return {200, buf.GetString()};
}

Reply user_new(TenantStore& store, const Edit& e) {
  tenants::UserRecord u;
  u.user_id = e.user_id ? *e.user_id : random_id();
  u.user_email = e.user_email;
  u.team_id = e.team_id;
  u.tier = e.tier;
  if (e.models) u.models = *e.models;
  if (e.metadata) u.metadata = *e.metadata;
  u.created_at_ms = tenants::now_ms();
  apply_limits(e, u.limits, u.created_at_ms);
  auto existing = store.find_user(u.user_id);
  if (!existing) return db_error(existing.error());
  if (*existing) return bad_request(fmt::format("User '{}' already exists.", u.user_id), "user_id");
  if (Status st = store.insert_user(u); !st) return db_error(st.error());
  std::optional<std::string> key;
  if (e.auto_create_key.value_or(true)) {
    // The user's own key carries no limits of its own: the user's apply to it.
    Edit key_edit{.user_id = u.user_id, .team_id = u.team_id};
    auto created = create_key(store, key_edit);
    if (!created) return db_error(created.error());
    key = created->first;
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "user_id", u.user_id);
  write_opt(w, "key", key);
  write_opt(w, "user_email", u.user_email);
  write_opt(w, "team_id", u.team_id);
  write_opt(w, "tier", u.tier);
  write_models(w, u.models);
  write_limits(w, u.limits);
  write_raw_json(w, "metadata", u.metadata);
  w.EndObject();
  return {200, buf.GetString()};
}

Reply user_info(TenantStore& store, const std::string& user_id);

// A user's or team's limits changed: its keys' cached principals carry them.
Reply user_update(TenantStore& store, tenants::Tenancy& tenancy, const Edit& e) {
  if (!e.user_id || e.user_id->empty()) return bad_request("'user_id' is required.", "user_id");
  auto u = store.find_user(*e.user_id);
  if (!u) return db_error(u.error());
  if (!*u) return not_found("User not found.");
  if (auto refused = check_team_exists(store, e)) return *refused;
  tenants::UserRecord record = std::move(**u);
  int64_t now = tenants::now_ms();
  if (e.user_email) record.user_email = e.user_email;
  if (e.team_id) record.team_id = e.team_id;
  if (e.tier) record.tier = e.tier;
  if (e.models) record.models = *e.models;
  if (e.metadata) record.metadata = *e.metadata;
  apply_limits(e, record.limits, now);
  auto updated = store.update_user(record, now);
  tenancy.invalidate_all();
  if (!updated) return db_error(updated.error());
  if (!*updated) return not_found("User not found.");
  return user_info(store, record.user_id);
}

Reply user_info(TenantStore& store, const std::string& user_id) {
  auto u = store.find_user(user_id);
  if (!u) return db_error(u.error());
  if (!*u) return not_found("User not found.");
  tenants::KeyFilter filter{.user_id = user_id};
  auto keys = store.list_keys(filter);
  if (!keys) return db_error(keys.error());
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "user_id", user_id);
  w.Key("user_info");
  w.StartObject();
  write_str(w, "user_id", (*u)->user_id);
  write_opt(w, "user_email", (*u)->user_email);
  write_opt(w, "team_id", (*u)->team_id);
  write_opt(w, "tier", (*u)->tier);
  write_models(w, (*u)->models);
  write_limits(w, (*u)->limits);
  write_raw_json(w, "metadata", (*u)->metadata);
  w.EndObject();
  w.Key("keys");
  w.StartArray();
  for (const auto& k : *keys) {
    w.StartObject();
    write_key_fields(w, k);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {200, buf.GetString()};
}

void write_team(Writer& w, const tenants::TeamRecord& t) {
  write_str(w, "team_id", t.team_id);
  write_opt(w, "team_alias", t.team_alias);
  write_opt(w, "tier", t.tier);
  write_models(w, t.models);
  write_limits(w, t.limits);
  write_raw_json(w, "metadata", t.metadata);
  w.Key("blocked");
  w.Bool(t.blocked);
}

// /team/new's and /team/update's answer: the team.
Reply team_reply(const tenants::TeamRecord& t) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_team(w, t);
  w.EndObject();
  return {200, buf.GetString()};
}

Reply team_new(TenantStore& store, const Edit& e) {
  tenants::TeamRecord t;
  t.team_id = e.team_id ? *e.team_id : random_id();
  t.team_alias = e.team_alias;
  t.tier = e.tier;
  if (e.models) t.models = *e.models;
  if (e.metadata) t.metadata = *e.metadata;
  t.blocked = e.blocked.value_or(false);
  t.created_at_ms = tenants::now_ms();
  apply_limits(e, t.limits, t.created_at_ms);
  auto existing = store.find_team(t.team_id);
  if (!existing) return db_error(existing.error());
  if (*existing) return bad_request(fmt::format("Team '{}' already exists.", t.team_id), "team_id");
  if (Status st = store.insert_team(t); !st) return db_error(st.error());
  return team_reply(t);
}

Reply team_update(TenantStore& store, tenants::Tenancy& tenancy, const Edit& e) {
  if (!e.team_id || e.team_id->empty()) return bad_request("'team_id' is required.", "team_id");
  auto t = store.find_team(*e.team_id);
  if (!t) return db_error(t.error());
  if (!*t) return not_found("Team not found.");
  tenants::TeamRecord record = std::move(**t);
  int64_t now = tenants::now_ms();
  if (e.team_alias) record.team_alias = e.team_alias;
  if (e.tier) record.tier = e.tier;
  if (e.models) record.models = *e.models;
  if (e.metadata) record.metadata = *e.metadata;
  if (e.blocked) record.blocked = *e.blocked;
  apply_limits(e, record.limits, now);
  auto updated = store.update_team(record, now);
  tenancy.invalidate_all();
  if (!updated) return db_error(updated.error());
  if (!*updated) return not_found("Team not found.");
  return team_reply(record);
}

Reply team_info(TenantStore& store, const std::string& team_id) {
  auto t = store.find_team(team_id);
  if (!t) return db_error(t.error());
  if (!*t) return not_found("Team not found.");
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "team_id", team_id);
  w.Key("team_info");
  w.StartObject();
  write_team(w, **t);
  w.EndObject();
  w.EndObject();
  return {200, buf.GetString()};
}

Reply spend_logs(TenantStore& store, const tenants::SpendFilter& filter) {
  auto logs = store.spend_logs(filter);
  if (!logs) return db_error(logs.error());
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartArray();
  for (const auto& s : *logs) {
    w.StartObject();
    write_str(w, "request_id", s.request_id);
    write_str(w, "api_key", s.key_hash);
    write_str(w, "user", s.user_id);
    write_str(w, "team_id", s.team_id);
    write_str(w, "model", s.model);
    write_str(w, "model_id", s.deployment);
    w.Key("prompt_tokens");
    w.Int64(s.prompt_tokens);
    w.Key("completion_tokens");
    w.Int64(s.completion_tokens);
    w.Key("total_tokens");
    w.Int64(s.prompt_tokens + s.completion_tokens);
    w.Key("spend");
    w.Double(s.cost);
    w.Key("request_duration_ms");
    w.Double(s.latency_ms);
    w.Key("status");
    w.Int(s.status);
    write_str(w, "startTime", iso8601(s.start_time_ms));
    write_str(w, "endTime", iso8601(s.end_time_ms));
    w.EndObject();
  }
  w.EndArray();
  return {200, buf.GetString()};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of `name` in a query string, percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out.push_back(' ');
      } else if (raw[i] == '%' && i + 2 < raw.size() + 0 && hex_value(raw[i + 1]) >= 0 &&
                 hex_value(raw[i + 2]) >= 0) {
        out.push_back(static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2])));
        i += 2;
      } else {
        out.push_back(raw[i]);
      }
    }
    return out;
  }
  return std::nullopt;
}

// "YYYY-MM-DD" (or a full ISO time, whose date part is used) → Unix ms at 00:00 UTC.
std::optional<int64_t> parse_date_ms(const std::string& s) {
  std::tm tm{};
  if (s.size() < 10 || std::sscanf(s.c_str(), "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

// The request's JSON object, or the 400 to answer.
std::variant<rapidjson::Document, Reply> parse_body(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (body.empty()) d.SetObject();
  else if (d.HasParseError() || !d.IsObject())
    return bad_request("The body must be a JSON object.");
  return d;
}

// Dispatch: everything but the I/O, run on the database thread.
// `own_key_hash`: the caller's key when it is a virtual key (which may read only its own
// /key/info); empty for the master key.
Reply dispatch(TenantStore& store, tenants::Tenancy& tenancy, std::string_view path,
               const std::string& body, std::string_view query, const std::string& own_key_hash) {
  if (path == "/key/info") {
    auto key = query_param(query, "key");
    if (!own_key_hash.empty()) {  // as LiteLLM: a key may look itself up, with or without `key`
      if (key && !key->empty() && to_hash(*key) != own_key_hash)
        return forbidden("A virtual key may read only its own /key/info.");
      return key_info(store, key && !key->empty() ? *key : own_key_hash);
    }
    if (!key || key->empty()) return bad_request("Query parameter 'key' is required.", "key");
    return key_info(store, *key);
  }
  if (!own_key_hash.empty()) return forbidden("This endpoint needs the master key.");
  if (path == "/key/list") {
    tenants::KeyFilter f;
    f.user_id = query_param(query, "user_id");
    f.team_id = query_param(query, "team_id");
    if (auto p = query_param(query, "page")) f.page = std::max<int64_t>(1, std::atoll(p->c_str()));
    if (auto s = query_param(query, "size")) f.size = std::clamp<int64_t>(std::atoll(s->c_str()), 1, 1000);
    auto full = query_param(query, "return_full_object");
    return key_list(store, f, full && *full == "true");
  }
  if (path == "/user/info") {
    auto id = query_param(query, "user_id");
    if (!id || id->empty()) return bad_request("Query parameter 'user_id' is required.", "user_id");
    return user_info(store, *id);
  }
  if (path == "/team/info") {
    auto id = query_param(query, "team_id");
    if (!id || id->empty()) return bad_request("Query parameter 'team_id' is required.", "team_id");
    return team_info(store, *id);
  }
  if (path == "/spend/logs") {
    tenants::SpendFilter f;
    if (auto k = query_param(query, "api_key")) f.key_hash = to_hash(*k);
    f.user_id = query_param(query, "user_id");
    f.team_id = query_param(query, "team_id");
    f.request_id = query_param(query, "request_id");
    if (auto l = query_param(query, "limit")) f.limit = std::atoll(l->c_str());
    if (auto s = query_param(query, "start_date")) f.start_ms = parse_date_ms(*s);
    if (auto e = query_param(query, "end_date")) {
      if (auto ms = parse_date_ms(*e)) f.end_ms = *ms + 86400000;  // the end date is included
    }
    return spend_logs(store, f);
  }
  auto parsed = parse_body(body);
  if (auto* r = std::get_if<Reply>(&parsed)) return *r;
  const rapidjson::Document& d = std::get<rapidjson::Document>(parsed);
  BodyReader reader(d);
  if (path == "/key/delete") {
    std::optional<std::vector<std::string>> keys, aliases;
    reader.strings("keys", &keys);
    reader.strings("key_aliases", &aliases);
    if (!reader.ok()) return reader.error();
    if (!keys && !aliases) return bad_request("'keys' or 'key_aliases' is required.", "keys");
    return key_delete(store, tenancy, keys.value_or(std::vector<std::string>{}),
                      aliases.value_or(std::vector<std::string>{}));
  }
  Edit e = read_edit(reader);
  if (!reader.ok()) return reader.error();
  if (path == "/key/generate") return key_generate(store, e);
  if (path == "/user/new") return user_new(store, e);
  if (path == "/team/new") return team_new(store, e);
  if (path == "/user/update") return user_update(store, tenancy, e);
  if (path == "/team/block" || path == "/team/unblock") {
    e = Edit{.team_id = e.team_id, .blocked = path == "/team/block"};
  }
  if (path.starts_with("/team/")) return team_update(store, tenancy, e);
  // /key/update, /key/block, /key/unblock: the key is in the body.
  if (!e.key || e.key->empty()) return bad_request("'key' is required.", "key");
  if (path == "/key/block") e = Edit{.key = e.key, .blocked = true};
  if (path == "/key/unblock") e = Edit{.key = e.key, .blocked = false};
  return key_update(store, tenancy, *e.key, e);
}

}  // namespace

std::optional<int64_t> parse_duration_seconds(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  int64_t n = std::stoll(std::string(text.substr(0, digits)));
  std::string_view unit = text.substr(digits);
  int64_t scale = unit.empty() || unit == "s" ? 1
                  : unit == "m"               ? 60
                  : unit == "h"               ? 3600
                  : unit == "d"               ? 86400
                  : unit == "w"               ? 7 * 86400
                  : unit == "mo"              ? 30 * 86400
                                              : 0;
  if (scale == 0 || n <= 0) return std::nullopt;
  return n * scale;
}

bool is_tenant_api_path(std::string_view path) {
  for (auto p : kPaths)
    if (path == p) return true;
  return false;
}

boost::asio::awaitable<void> handle_tenant_api(tenants::Tenancy& tenancy, http::Exchange& ex,
                                               std::string_view path, std::string own_key_hash) {
  bool wants_get = false;
  for (auto p : kGetPaths) wants_get |= path == p;
  std::string_view method = ex.method();
  if ((wants_get && method != "GET") || (!wants_get && method != "POST")) {
    openai::ApiError e = openai::method_not_allowed(method, ex.path());
    std::string body = e.to_json();
    co_await ex.respond(e.status, "application/json", std::move(body));
    co_return;
  }
  std::string path_copy(path);
  std::string body_copy = ex.body();
  std::string query_copy(ex.query());
  tenants::Tenancy* t = &tenancy;
  auto work = [t, path_copy, body_copy, query_copy, own_key_hash](TenantStore& store) {
    return dispatch(store, *t, path_copy, body_copy, query_copy, own_key_hash);
  };
  Reply reply = co_await tenancy.run(std::move(work));
  co_await ex.respond(reply.status, "application/json", std::move(reply.body));
}

}  // namespace ondol::gateway
