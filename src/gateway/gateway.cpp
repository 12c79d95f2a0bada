#include "gateway/gateway.h"

#include <utility>

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <openssl/crypto.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include <fmt/ranges.h>
#include <rapidjson/document.h>

#include "common/log.h"
#include "engine/engine.h"
#include "gateway/policies.h"
#include "gateway/proxy.h"
#include "gateway/tenant_api.h"
#include "tenants/key_codec.h"
#include "tenants/tenancy.h"
#include "openai/error.h"

namespace ondol::gateway {

namespace asio = boost::asio;

const char* const kEmbeddedDefaultConfig = R"(# ondol's embedded default: one in-process mock model.
model_list:
  - model_name: ondol-mock
    litellm_params:
      model: mock/ondol-mock
      mock_output_tokens: 16
router_settings:
  routing_strategy: simple-shuffle
)";

namespace {

constexpr std::string_view kComponent = "gateway";
constexpr auto kProbeTimeout = std::chrono::seconds(3);

// Paths that never need a key: orchestrators probe them and Prometheus scrapes /metrics.
constexpr std::string_view kAlwaysPublic[] = {"/health/liveliness", "/health/liveness",
                                              "/health/readiness", "/ready", "/metrics"};

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

// A client-sent X-Request-ID is echoed only if it is short and printable (it goes into logs).
bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
  return true;
}

// The metrics label for a path: a fixed set, so scanners cannot create series.
std::string_view handler_label(std::string_view path) {
  static constexpr std::string_view kKnown[] = {
      "/chat/completions", "/completions", "/embeddings", "/models", "/health",
      "/health/backends", "/health/liveliness", "/health/readiness", "/ready", "/metrics",
      "/admin/reload", "/tokenize", "/detokenize", "/key/generate", "/key/info", "/key/update",
      "/key/delete", "/key/list", "/key/block", "/key/unblock", "/user/new", "/user/info",
      "/team/new", "/team/info", "/spend/logs"};
  for (auto k : kKnown)
    if (path == k) return k;
  return "other";
}

// Takes the error by value and names every argument of the co_await: see docs/architecture.md,
// "Coroutines and GCC 12".
asio::awaitable<void> respond_error(http::Exchange& ex, openai::ApiError e) {
  std::string body = e.to_json();
  co_await ex.respond(e.status, "application/json", std::move(body));
}

}  // namespace

Gateway::Gateway(metrics::Registry& registry, GatewayOptions options)
    : registry_(registry), metrics_(registry), options_(std::move(options)) {}

Gateway::~Gateway() = default;

struct Gateway::AuthResult {
  std::shared_ptr<const Principal> principal;
  std::optional<openai::ApiError> error;
};

namespace {

// Where state lives without a database_url: ONDOL_STATE_DIR, else beside the config file, else
// $XDG_STATE_HOME/ondol or ~/.local/state/ondol.
std::string state_dir(const std::string& config_path) {
  if (const char* d = std::getenv("ONDOL_STATE_DIR"); d && *d) return d;
  if (!config_path.empty()) return std::filesystem::absolute(config_path).parent_path().string();
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/ondol";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/state/ondol";
  return ".";
}

tenants::Tiers to_tiers(const TenancyConfig& c) {
  tenants::Tiers tiers;
  for (const auto& [name, t] : c.tiers)
    tiers[name] = {.rpm = t.rpm, .tpm = t.tpm, .tpd = t.tpd,
                   .max_parallel_requests = t.max_parallel_requests};
  return tiers;
}

std::chrono::milliseconds ttl_of(const TenancyConfig& c) {
  return std::chrono::milliseconds(static_cast<int64_t>(c.key_cache_ttl_s * 1000));
}

}  // namespace

Status Gateway::open_tenancy(const GatewayConfig& config) {
  const TenancyConfig& c = config.tenancy;
  std::string dir = state_dir(options_.config_path);
  tenants::TenancyOptions o;
  if (!c.database_url.empty() && !c.database_url.starts_with("sqlite://")) {
    o.database_url = c.database_url;
    o.spool_dir = c.spend_spool_dir.empty() ? dir + "/ondol-spend-spool" : c.spend_spool_dir;
  } else {
    o.database_url = !c.database_path.empty() ? c.database_path
                     : !c.database_url.empty() ? c.database_url.substr(9)
                                               : dir + "/ondol.db";
    o.spool_dir = c.spend_spool_dir.empty() ? o.database_url + ".spend-spool" : c.spend_spool_dir;
  }
  o.key_cache_ttl = ttl_of(c);
  o.tiers = to_tiers(c);
  o.spend_logs_enabled = !c.disable_spend_logs;
  auto t = tenants::Tenancy::open(std::move(o));
  if (!t) return make_error("tenant store: " + t.error().message);
  tenancy_ = std::move(*t);
  tenancy_->declare_metrics(registry_);
  auto master = std::make_shared<Principal>();
  master->kind = Principal::Kind::MasterKey;
  master->usage_sink = tenancy_->spend_sink();
  master_ = std::move(master);
  return Ok{};
}

const std::shared_ptr<const RouteTable>& Gateway::table() const {
  struct Cached {
    const Gateway* owner = nullptr;
    uint64_t version = 0;
    std::shared_ptr<const RouteTable> table;
  };
  thread_local Cached cached;
  uint64_t version = table_version_.load(std::memory_order_acquire);
  if (cached.owner != this || cached.version != version) {
    std::lock_guard lock(table_mu_);
    cached.owner = this;
    cached.version = table_version_.load(std::memory_order_relaxed);
    cached.table = table_;
  }
  return cached.table;
}

const std::string& Gateway::master_key() const {
  return !options_.master_key.empty() ? options_.master_key : table()->config().master_key;
}

Status Gateway::install(std::shared_ptr<GatewayConfig> config) {
  std::shared_ptr<const RouteTable> previous;
  {
    std::lock_guard lock(table_mu_);
    previous = table_;
  }
  auto table = RouteTable::build(config, previous.get(), &registry_);
  if (!table) return table.error();
  for (const auto& d : (*table)->deployments()) d->series = metrics_.deployment(d->config);
  std::lock_guard lock(table_mu_);
  table_ = std::move(*table);
  table_version_.fetch_add(1, std::memory_order_release);
  return Ok{};
}

Status Gateway::load() {
  std::lock_guard lock(reload_mu_);
  auto config = !options_.config_path.empty() ? load_config_file(options_.config_path)
                : !options_.config_text.empty()
                    ? parse_config(options_.config_text, "<command line>")
                    : parse_config(kEmbeddedDefaultConfig, "<embedded default>");
  if (!config) return config.error();
  for (const auto& w : config->warnings) log::warn("config", w);
  auto shared = std::make_shared<GatewayConfig>(std::move(*config));
  if (Status st = install(shared); !st) return st;
  // Virtual keys need a master key to manage them (as in LiteLLM): no master key, no store.
  if (!policies_) policies_ = std::make_unique<Policies>(*shared, registry_);
  if (!tenancy_ && !master_key().empty()) return open_tenancy(*shared);
  return Ok{};
}

Status Gateway::reload() {
  std::lock_guard lock(reload_mu_);
  if (options_.config_path.empty()) {
    metrics_.config_reloads_failed->inc();
    return make_error("no --config file to reload");
  }
  auto config = load_config_file(options_.config_path);
  if (!config) {
    metrics_.config_reloads_failed->inc();
    log::error("config", "reload rejected; the previous config keeps serving",
               {{"error", config.error().message}});
    return config.error();
  }
  for (const auto& w : config->warnings) log::warn("config", w);
  if (auto st = install(std::make_shared<GatewayConfig>(std::move(*config))); !st) {
    metrics_.config_reloads_failed->inc();
    log::error("config", "reload rejected; the previous config keeps serving",
               {{"error", st.error().message}});
    return st;
  }
  metrics_.config_reloads_ok->inc();
  if (policies_) policies_->warn_startup_only_changes(table()->config());
  if (tenancy_) {
    const TenancyConfig& c = table()->config().tenancy;
    tenancy_->reconfigure(to_tiers(c), ttl_of(c));
  }
  const auto& t = table();
  log::info("config", "reloaded",
            {{"file", options_.config_path},
             {"deployments", static_cast<int64_t>(t->deployments().size())},
             {"models", static_cast<int64_t>(t->groups().size())}});
  return Ok{};
}

bool Gateway::is_public(std::string_view path) const {
  for (auto p : kAlwaysPublic)
    if (path == p) return true;
  const auto& t = table();
  for (const auto& p : t->config().public_routes) {
    std::string_view route = p;
    if (route.starts_with("/v1/")) route.remove_prefix(3);
    if (path == route) return true;
  }
  return false;
}

asio::awaitable<Gateway::AuthResult> Gateway::authenticate(const http::Exchange& ex) {
  AuthResult r;
  const std::string& key = master_key();
  if (key.empty()) {
    r.principal = anonymous_;
    co_return r;
  }
  std::string_view presented = ex.header("authorization");
  if (presented.starts_with("Bearer ") || presented.starts_with("bearer "))
    presented.remove_prefix(7);
  if (presented.empty()) presented = ex.header("x-api-key");
  if (presented.empty()) presented = ex.header("api-key");
  // Constant time in the key's length: a timing probe learns nothing about the prefix.
  if (tenants::equal_constant_time(presented, key)) {
    r.principal = master_ ? master_ : anonymous_;
    co_return r;
  }
  if (presented.empty()) {
    r.error = openai::authentication_error("No API key provided. Send 'Authorization: Bearer <key>'.");
    co_return r;
  }
  if (!tenancy_) {
    r.error = openai::authentication_error("Invalid API key.");
    co_return r;
  }
  std::string presented_key(presented);
  tenants::KeyResolution resolved = co_await tenancy_->resolve(std::move(presented_key));
  switch (resolved.status) {
    case tenants::KeyStatus::Ok:
      r.principal = std::move(resolved.principal);
      break;
    case tenants::KeyStatus::Unknown:
      r.error = openai::authentication_error("Invalid API key.");
      break;
    case tenants::KeyStatus::Expired:
      r.error = openai::authentication_error("Authentication Error - Expired Key.");
      r.error->code = "key_expired";
      break;
    case tenants::KeyStatus::Blocked:
      r.error = openai::ApiError{403, "Authentication Error - This key is blocked.",
                                 "permission_error", {}, "key_blocked"};
      break;
    case tenants::KeyStatus::Unavailable:
      // Not a 401: the key may well be valid; the store cannot say so now.
      r.error = openai::service_unavailable("The key store is unavailable; try again shortly.");
      break;
  }
  co_return r;
}

// One sampled request's bodies, redacted, beside its request id.
void Gateway::log_bodies(const RecordingExchange& ex, std::string_view request_id) const {
  const std::string request = redact_body(ex.body(), options_.body_log);
  const std::string response = redact_body(ex.response_body(), options_.body_log);
  log::info("body", "request and response bodies",
            {{"request_id", request_id}, {"path", ex.path()},
             {"status", ex.response_status()}, {"request_body", request},
             {"response_body", response}, {"response_truncated", ex.truncated()}});
}

asio::awaitable<void> Gateway::handle(http::Exchange& ex) {
  std::string request_id(ex.header("x-request-id"));
  if (!acceptable_request_id(request_id)) request_id = new_request_id();
  ex.add_response_header("X-Request-ID", request_id);

  std::string_view path = ex.path();
  if (path.starts_with("/v1/")) path.remove_prefix(3);
  std::string_view method = ex.method();
  std::string_view label = handler_label(path);

  AuthResult auth;
  auth.principal = anonymous_;
  if (!is_public(path)) {
    auth = co_await authenticate(ex);
  }
  bool admin_path = path == "/admin/reload" || is_tenant_api_path(path);
  if (auth.error) {
    if (auth.error->status == 503) ex.add_response_header("Retry-After", "1");
    openai::ApiError e = std::move(*auth.error);
    co_await respond_error(ex, std::move(e));
  } else if (admin_path && auth.principal->kind == Principal::Kind::VirtualKey &&
             !(path == "/key/info" && tenancy_)) {
    openai::ApiError e{403, "This endpoint needs the master key.", "permission_error", {},
                       "forbidden"};
    co_await respond_error(ex, std::move(e));
  } else if (is_tenant_api_path(path)) {
    if (!tenancy_) {
      openai::ApiError e = openai::invalid_request(
          "Keys, users and teams need a master key (general_settings.master_key).");
      co_await respond_error(ex, std::move(e));
    } else {
      // A virtual key reaches here only for /key/info, and reads only its own.
      std::string own_key_hash =
          auth.principal->kind == Principal::Kind::VirtualKey ? auth.principal->key_hash : "";
      co_await handle_tenant_api(*tenancy_, ex, path, std::move(own_key_hash));
    }
  } else if (path == "/tokenize" || path == "/detokenize") {
    if (method != "POST") {
      openai::ApiError e = openai::method_not_allowed(method, ex.path());
      co_await respond_error(ex, std::move(e));
    } else {
      co_await handle_tokenize(ex, path == "/tokenize");
    }
  } else if (path == "/chat/completions" || path == "/completions" || path == "/embeddings") {
    if (method != "POST") {
      openai::ApiError e = openai::method_not_allowed(method, ex.path());
      co_await respond_error(ex, std::move(e));
    } else {
      auto endpoint = path == "/chat/completions" ? openai::Endpoint::ChatCompletions
                      : path == "/completions"    ? openai::Endpoint::Completions
                                                  : openai::Endpoint::Embeddings;
      std::shared_ptr<const RouteTable> snapshot = table();  // held across awaits
      std::shared_ptr<const Principal> held = auth.principal;  // held across awaits
      const Principal& principal = *held;
      if (sample_body_log(options_.body_log.sample_rate)) {
        RecordingExchange recording(ex, options_.body_log.max_bytes);
        co_await proxy_request(metrics_, *policies_, std::move(snapshot), endpoint, recording,
                               request_id,
                               principal);
        log_bodies(recording, request_id);
      } else {
        co_await proxy_request(metrics_, *policies_, std::move(snapshot), endpoint, ex, request_id,
                               principal);
      }
    }
  } else if (method != "GET" && method != "HEAD" && path != "/admin/reload") {
    openai::ApiError e = label == "other" ? openai::not_found_path(ex.path())
                                          : openai::method_not_allowed(method, ex.path());
    co_await respond_error(ex, std::move(e));
  } else if (path == "/models") {
    co_await handle_models(ex);
  } else if (path == "/health" || path == "/health/liveliness" || path == "/health/liveness") {
    bool deep = path == "/health" && (ex.query().find("deep=1") != std::string_view::npos ||
                                      ex.query().find("deep=true") != std::string_view::npos);
    co_await handle_health(ex, deep);
  } else if (path == "/health/backends") {
    co_await handle_health(ex, true);
  } else if (path == "/ready" || path == "/health/readiness") {
    co_await handle_ready(ex);
  } else if (path == "/metrics") {
    std::string exposition = registry_.render();
    co_await ex.respond(200, "text/plain; version=0.0.4; charset=utf-8", std::move(exposition));
  } else if (path == "/admin/reload") {
    if (method != "POST") {
      openai::ApiError e = openai::method_not_allowed(method, ex.path());
      co_await respond_error(ex, std::move(e));
    } else {
      co_await handle_reload(ex);
    }
  } else {
    openai::ApiError e = openai::not_found_path(ex.path());
    co_await respond_error(ex, std::move(e));
  }
  metrics_.http_request(label, method == "POST" ? "POST" : method == "GET" ? "GET" : "other",
                        ex.response_status(), ex.elapsed_seconds());
}

// vLLM's /tokenize ({"model","prompt","add_special_tokens"} -> {"count","max_model_len",
// "tokens"}) and /detokenize ({"model","tokens"} -> {"prompt"}), for models served in process.
asio::awaitable<void> Gateway::handle_tokenize(http::Exchange& ex, bool tokenize) {
  rapidjson::Document d;
  d.Parse(ex.body().data(), ex.body().size());
  std::string body;
  openai::ApiError error;
  engine::Engine* engine = nullptr;
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("model") || !d["model"].IsString()) {
    error = openai::invalid_request("The body must be a JSON object with a string 'model'.", "model");
  } else {
    std::string_view model(d["model"].GetString(), d["model"].GetStringLength());
    const ModelGroup* group = table()->find(model);
    if (group) {
      for (const auto* dep : group->deployments)
        if ((engine = dep->backend->local_engine())) break;
    }
    if (!group) error = openai::model_not_found(model);
    else if (!engine)
      error = openai::invalid_request("Tokenization is available for models served in process "
                                      "(local/...) only.", "model");
  }
  if (engine && tokenize) {
    auto prompt = d.FindMember("prompt");
    auto special = d.FindMember("add_special_tokens");
    bool add_special = special == d.MemberEnd() || !special->value.IsBool() || special->value.GetBool();
    if (prompt == d.MemberEnd() || !prompt->value.IsString()) {
      error = openai::invalid_request("'prompt' must be a string.", "prompt");
    } else {
      auto ids = engine->tokenize({prompt->value.GetString(), prompt->value.GetStringLength()}, add_special);
      body = fmt::format(R"({{"count":{},"max_model_len":{},"tokens":[{}]}})", ids.size(),
                         engine->info().max_model_len, fmt::join(ids, ","));
    }
  } else if (engine) {
    auto tokens = d.FindMember("tokens");
    std::vector<int32_t> ids;
    bool ok = tokens != d.MemberEnd() && tokens->value.IsArray();
    if (ok) {
      for (const auto& t : tokens->value.GetArray()) {
        ok = ok && t.IsInt() && t.GetInt() >= 0 && t.GetInt() < engine->info().vocab_size;
        if (ok) ids.push_back(t.GetInt());
      }
    }
    if (!ok) {
      error = openai::invalid_request("'tokens' must be an array of token ids of this model.", "tokens");
    } else {
      body = "{\"prompt\":";
      log::append_json_string(body, engine->detokenize(ids));
      body.push_back('}');
    }
  }
  if (body.empty()) {
    co_await respond_error(ex, std::move(error));
    co_return;
  }
  co_await ex.respond(200, "application/json", std::move(body));
}

asio::awaitable<void> Gateway::handle_models(http::Exchange& ex) {
  std::shared_ptr<const RouteTable> snapshot = table();
  int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  std::string out = R"({"object":"list","data":[)";
  bool first = true;
  for (const auto& g : snapshot->groups()) {
    if (!first) out.push_back(',');
    first = false;
    out.append(R"({"id":)");
    log::append_json_string(out, g->name);
    out.append(fmt::format(R"(,"object":"model","created":{},"owned_by":"ondol"}})", created));
  }
  out.append("]}");
  co_await ex.respond(200, "application/json", std::move(out));
}

asio::awaitable<void> Gateway::handle_health(http::Exchange& ex, bool deep) {
  if (!deep) {
    // Liveness stays 200 while the process serves; a database outage shows in "db".
    bool db_ok = true;
    if (tenancy_) {
      db_ok = co_await tenancy_->check_db();
    }
    std::string body = !tenancy_ ? R"({"status":"healthy"})"
                       : db_ok   ? R"({"status":"healthy","db":"connected"})"
                                 : R"({"status":"healthy","db":"disconnected"})";
    bool redis_ok = true;
    if (policies_ && policies_->redis_configured()) {
      redis_ok = co_await policies_->check_redis();
    }
    if (policies_ && policies_->redis_configured()) {  // rate-limit counters (docs/limits.md)
      body.pop_back();
      body.append(redis_ok ? R"(,"redis":"connected")" : R"(,"redis":"disconnected")");
      body.append(policies_->fail_closed() ? R"(,"rate_limit_fail_mode":"closed"})"
                                           : R"(,"rate_limit_fail_mode":"open"})");
    }
    co_await ex.respond(200, "application/json", std::move(body));
    co_return;
  }
  std::shared_ptr<const RouteTable> snapshot = table();
  std::string healthy = "[";
  std::string unhealthy = "[";
  int n_healthy = 0;
  int n_unhealthy = 0;
  for (const auto& d : snapshot->deployments()) {
    std::string why = co_await d->backend->probe(kProbeTimeout);
    std::string entry = "{\"model_name\":";
    log::append_json_string(entry, d->config.model_name);
    entry.append(",\"model\":");
    log::append_json_string(entry, d->config.model);
    entry.append(",\"model_id\":");
    log::append_json_string(entry, d->config.id);
    entry.append(",\"api_base\":");
    log::append_json_string(entry, d->config.api_base);
    if (why.empty()) {
      if (n_healthy++) healthy.push_back(',');
      healthy.append(entry).append("}");
    } else {
      entry.append(",\"error\":");
      log::append_json_string(entry, why);
      if (n_unhealthy++) unhealthy.push_back(',');
      unhealthy.append(entry).append("}");
    }
  }
  // The tenant store is a state store: deep health fails while it is away.
  bool db_ok = true;
  if (tenancy_) {
    db_ok = co_await tenancy_->check_db();
  }
  std::string_view db = !tenancy_ ? "" : db_ok ? R"(,"db":"connected")" : R"(,"db":"disconnected")";
  bool all_ok = n_unhealthy == 0 && db_ok;
  std::string body = fmt::format(
      R"({{"status":"{}","healthy_endpoints":{}],"unhealthy_endpoints":{}],"healthy_count":{},"unhealthy_count":{}{}}})",
      all_ok ? "healthy" : "unhealthy", healthy, unhealthy, n_healthy, n_unhealthy, db);
  int status = all_ok ? 200 : 503;
  co_await ex.respond(status, "application/json", std::move(body));
}

asio::awaitable<void> Gateway::handle_ready(http::Exchange& ex) {
  ServingState s = state_.load();
  std::string_view why;
  if (s == ServingState::Starting) why = "starting";
  if (s == ServingState::Draining) why = "draining";
  if (why.empty()) {
    std::shared_ptr<const RouteTable> snapshot = table();
    auto now = Clock::now();
    bool any = false;
    for (const auto& d : snapshot->deployments()) any |= !d->state->cooling_down(now);
    if (!any) why = "no deployment is healthy";
  }
  if (!why.empty()) {
    ex.add_response_header("Retry-After", "1");
    std::string body = fmt::format(R"({{"status":"not ready","reason":"{}"}})", why);
    co_await ex.respond(503, "application/json", std::move(body));
    co_return;
  }
  std::string body = R"({"status":"ready"})";
  co_await ex.respond(200, "application/json", std::move(body));
}

asio::awaitable<void> Gateway::handle_reload(http::Exchange& ex) {
  // Without a master key, reload is allowed only from this machine.
  if (master_key().empty()) {
    auto remote = ex.remote_address();
    if (remote != "127.0.0.1" && remote != "::1" && !remote.starts_with("::ffff:127.")) {
      openai::ApiError e{403, "Reload needs a master key or a loopback client.",
                         "permission_error", {}, "forbidden"};
      co_await respond_error(ex, std::move(e));
      co_return;
    }
  }
  auto st = reload();
  if (!st) {
    openai::ApiError e = openai::invalid_request(
        "Config rejected; the previous config keeps serving: " + st.error().message);
    co_await respond_error(ex, std::move(e));
    co_return;
  }
  const auto& t = table();
  std::string body = fmt::format(R"({{"status":"reloaded","deployments":{},"models":{}}})",
                                 t->deployments().size(), t->groups().size());
  co_await ex.respond(200, "application/json", std::move(body));
}

}  // namespace ondol::gateway
