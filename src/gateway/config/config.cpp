// parse_config: the top level of the file and the settings sections; model_list entries are
// read by deployment_parser.cpp, the printed table is in routing_table.cpp.
#include "gateway/config/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "gateway/config/accepted_keys.h"
#include "gateway/config/deployment_parser.h"
#include "gateway/config/yaml_mapping.h"
#include "gateway/config/yaml_source.h"

namespace ondol::gateway {
namespace {

using config_detail::Minimum;
using config_detail::YamlMapping;
using config_detail::YamlSource;
using config_detail::YamlValue;

// A config file larger than this is not a config file (a wrong path such as a model file).
constexpr std::uintmax_t kMaxConfigFileBytes = 16u << 20;

struct StrategyName {
  std::string_view name;
  RoutingStrategy strategy;
  bool approximated;  // a LiteLLM strategy ondol does not implement, mapped to `strategy`
};
constexpr StrategyName kStrategyNames[] = {
    {"simple-shuffle", RoutingStrategy::SimpleShuffle, false},
    {"least-busy", RoutingStrategy::LeastBusy, false},
    {"latency-based-routing", RoutingStrategy::LatencyBased, false},
    {"usage-based-routing", RoutingStrategy::SimpleShuffle, true},
    {"usage-based-routing-v2", RoutingStrategy::SimpleShuffle, true},
    {"cost-based-routing", RoutingStrategy::SimpleShuffle, true},
};

// A fallbacks rule with the lines needed to report a name that model_list does not define.
struct PendingFallback {
  Fallback rule;
  int line = 0;
  std::vector<int> target_lines;
};

// Values that two sections may both give; resolved once every section has been read.
struct Overrides {
  std::optional<int> litellm_num_retries;
  std::optional<int> router_num_retries;
  std::optional<double> litellm_request_timeout_s;
  std::optional<double> router_timeout_s;
  std::optional<double> router_stream_timeout_s;
  std::optional<std::vector<PendingFallback>> litellm_fallbacks;
  std::optional<std::vector<PendingFallback>> router_fallbacks;
};

// Propagates a failure: loading stops at the first error found.
#define ONDOL_CONFIG_TRY(expr)          \
  do {                                  \
    if (Status s_ = (expr); !s_.ok()) { \
      return s_.error();                \
    }                                   \
  } while (false)

// fallbacks: [{primary: [fallback, ...]}, ...]. A mapping with several keys is read as several
// rules (LiteLLM would use only its first key).
Result<std::vector<PendingFallback>> parse_fallbacks(YamlSource& source, const YamlValue& value) {
  if (!value.node.IsSequence()) {
    return source.error_at(
        value.line, fmt::format("{} must be a list like [{{model: [fallback, ...]}}], got {}",
                                value.path, YamlSource::describe(value.node)));
  }
  std::vector<PendingFallback> out;
  size_t index = 0;
  for (const YAML::Node& element : value.node) {
    const int element_line = YamlSource::line_of(element);
    const YamlValue item{.node = element,
                         .line = element_line > 0 ? element_line : value.line,
                         .path = fmt::format("{}[{}]", value.path, index++)};
    if (!element.IsMap()) {
      return source.error_at(item.line, fmt::format("{} must be a mapping like {{model: "
                                                    "[fallback, ...]}}, got {}",
                                                    item.path, YamlSource::describe(element)));
    }
    for (const auto& kv : element) {
      PendingFallback pending;
      pending.line = YamlSource::line_of(kv.first);
      if (pending.line == 0) pending.line = item.line;
      const YamlValue key{.node = kv.first, .line = pending.line, .path = item.path + " key"};
      Result<std::string> name = source.text(key);
      if (!name.ok()) return name.error();
      pending.rule.model_name = std::move(*name);
      const int targets_line = YamlSource::line_of(kv.second);
      const YamlValue targets{.node = kv.second,
                              .line = targets_line > 0 ? targets_line : pending.line,
                              .path = fmt::format("{}.{}", item.path, pending.rule.model_name)};
      Result<std::vector<std::string>> list = source.string_list(targets);
      if (!list.ok()) return list.error();
      if (list->empty()) {
        return source.error_at(targets.line,
                               fmt::format("{} names no fallback model", targets.path));
      }
      for (const YAML::Node& t : kv.second) {
        const int line = YamlSource::line_of(t);
        pending.target_lines.push_back(line > 0 ? line : targets.line);
      }
      pending.rule.fallbacks = std::move(*list);
      out.push_back(std::move(pending));
    }
  }
  return out;
}

Status parse_routing_strategy(YamlMapping& router, RoutingStrategy* out) {
  std::optional<YamlValue> value = router.take("routing_strategy");
  if (!value) return Ok{};
  YamlSource& source = router.source();
  Result<std::string> name = source.text(*value);
  if (!name.ok()) return name.error();
  for (const StrategyName& s : kStrategyNames) {
    if (s.name != *name) continue;
    *out = s.strategy;
    if (s.approximated) {
      source.warn_at(value->line, fmt::format("routing_strategy '{}' is not implemented; using "
                                              "'{}'",
                                              *name, to_string(s.strategy)));
    }
    return Ok{};
  }
  return source.error_at(value->line, fmt::format("{} must be simple-shuffle, least-busy or "
                                                  "latency-based-routing, got '{}'",
                                                  value->path, *name));
}

// Redis connection fields with a prefix: router_settings "redis_host" ..., cache_params "host" ...
Status parse_redis_settings(YamlMapping& m, std::string_view prefix, RedisSettings* out) {
  auto key = [&](std::string_view name) { return std::string(prefix) + std::string(name); };
  ONDOL_CONFIG_TRY(m.read_string(key("url"), &out->url));
  ONDOL_CONFIG_TRY(m.read_string(key("host"), &out->host));
  ONDOL_CONFIG_TRY(m.read_int(key("port"), 1, &out->port));
  ONDOL_CONFIG_TRY(m.read_string(key("password"), &out->password));
  ONDOL_CONFIG_TRY(m.read_int(key("db"), 0, &out->db));
  if (out->port > 65535) {
    return m.source().error_at(m.line(), fmt::format("{}port must be a TCP port, got {}", prefix,
                                                     out->port));
  }
  if (!out->url.empty() && !out->url.starts_with("redis://") &&
      !out->url.starts_with("rediss://")) {
    return m.source().error_at(
        m.line(), fmt::format("{}url must start with redis:// or rediss:// (TLS)", prefix));
  }
  return Ok{};
}

// litellm_settings.cache_params: {type: local|redis, ttl, mode, max_size, namespace, host, port,
// password, url, db}.
Status parse_cache_params(YamlSource& source, const YamlValue& value, CacheConfig* cache) {
  Result<YamlMapping> params = YamlMapping::from(source, value);
  if (!params.ok()) return params.error();
  if (std::optional<YamlValue> type = params->take("type")) {
    Result<std::string> text = source.text(*type);
    if (!text.ok()) return text.error();
    if (*text != "local" && *text != "redis") {
      return source.error_at(type->line, fmt::format("{} must be local or redis, got '{}'",
                                                     type->path, *text));
    }
    cache->redis = *text == "redis";
  }
  ONDOL_CONFIG_TRY(params->read_number("ttl", Minimum{.strict = true}, &cache->ttl_s));
  if (std::optional<YamlValue> mode = params->take("mode")) {
    Result<std::string> text = source.text(*mode);
    if (!text.ok()) return text.error();
    if (*text != "default_on" && *text != "default_off") {
      return source.error_at(mode->line, fmt::format("{} must be default_on or default_off, got "
                                                     "'{}'",
                                                     mode->path, *text));
    }
    cache->default_off = *text == "default_off";
  }
  std::optional<int> max_size;
  ONDOL_CONFIG_TRY(params->read_int("max_size", 1, &max_size));
  if (max_size) cache->max_entries = *max_size;
  ONDOL_CONFIG_TRY(params->read_string("namespace", &cache->namespace_));
  ONDOL_CONFIG_TRY(parse_redis_settings(*params, "", &cache->redis_settings));
  static constexpr std::string_view kAcceptedCacheParams[] = {"supported_call_types",
                                                               "default_in_memory_ttl",
                                                               "default_in_redis_ttl"};
  params->warn_unknown(kAcceptedCacheParams);
  return Ok{};
}

Status parse_router_settings(YamlSource& source, const YamlValue& value, GatewayConfig* config,
                             Overrides* overrides) {
  Result<YamlMapping> router = YamlMapping::from(source, value);
  if (!router.ok()) return router.error();
  RouterSettings& r = config->router;
  ONDOL_CONFIG_TRY(parse_routing_strategy(*router, &r.routing_strategy));
  ONDOL_CONFIG_TRY(router->read_int("num_retries", 0, &overrides->router_num_retries));
  ONDOL_CONFIG_TRY(router->read_int("allowed_fails", 0, &r.allowed_fails));
  ONDOL_CONFIG_TRY(router->read_number("cooldown_time", Minimum{}, &r.cooldown_time_s));
  ONDOL_CONFIG_TRY(
      router->read_number("timeout", Minimum{.strict = true}, &overrides->router_timeout_s));
  ONDOL_CONFIG_TRY(router->read_number("stream_timeout", Minimum{.strict = true},
                                       &overrides->router_stream_timeout_s));
  if (std::optional<YamlValue> fallbacks = router->take("fallbacks")) {
    Result<std::vector<PendingFallback>> parsed = parse_fallbacks(source, *fallbacks);
    if (!parsed.ok()) return parsed.error();
    overrides->router_fallbacks = std::move(*parsed);
  }
  LimitsConfig& limits = config->limits;
  ONDOL_CONFIG_TRY(parse_redis_settings(*router, "redis_", &limits.redis));
  ONDOL_CONFIG_TRY(router->read_number("redis_timeout", Minimum{.strict = true},
                                       &limits.redis_timeout_s));
  if (std::optional<YamlValue> mode = router->take("rate_limit_fail_mode")) {
    Result<std::string> text = source.text(*mode);
    if (!text.ok()) return text.error();
    if (*text != "open" && *text != "closed") {
      return source.error_at(mode->line, fmt::format("{} must be open or closed, got '{}'",
                                                     mode->path, *text));
    }
    limits.fail_closed = *text == "closed";
  }
  router->warn_unknown(config_detail::kAcceptedRouterSettings);
  return Ok{};
}

Status parse_litellm_settings(YamlSource& source, const YamlValue& value, GatewayConfig* config,
                              Overrides* overrides) {
  Result<YamlMapping> settings = YamlMapping::from(source, value);
  if (!settings.ok()) return settings.error();
  ONDOL_CONFIG_TRY(settings->read_number("request_timeout", Minimum{.strict = true},
                                         &overrides->litellm_request_timeout_s));
  ONDOL_CONFIG_TRY(settings->read_int("num_retries", 0, &overrides->litellm_num_retries));
  ONDOL_CONFIG_TRY(settings->read_bool("drop_params", &config->drop_params));
  // LiteLLM also takes a single callback as a plain string.
  if (std::optional<YamlValue> callbacks = settings->take("callbacks")) {
    if (callbacks->node.IsScalar()) {
      Result<std::string> one = source.text(*callbacks);
      if (!one.ok()) return one.error();
      config->callbacks = {std::move(*one)};
    } else {
      Result<std::vector<std::string>> list = source.string_list(*callbacks);
      if (!list.ok()) return list.error();
      config->callbacks = std::move(*list);
    }
  }
  if (std::optional<YamlValue> fallbacks = settings->take("fallbacks")) {
    Result<std::vector<PendingFallback>> parsed = parse_fallbacks(source, *fallbacks);
    if (!parsed.ok()) return parsed.error();
    overrides->litellm_fallbacks = std::move(*parsed);
  }
  ONDOL_CONFIG_TRY(settings->read_bool("cache", &config->cache.enabled));
  if (std::optional<YamlValue> params = settings->take("cache_params")) {
    ONDOL_CONFIG_TRY(parse_cache_params(source, *params, &config->cache));
  }
  settings->warn_unknown(config_detail::kAcceptedLitellmSettings);
  return Ok{};
}

// A limit that may exceed 2^31 (tokens per day): a whole number >= 0.
Status read_limit(YamlMapping& m, std::string_view key, std::optional<int64_t>* out) {
  std::optional<double> v;
  if (Status s = m.read_number(key, Minimum{}, &v); !s) return s;
  if (v) *out = static_cast<int64_t>(*v);
  return Ok{};
}

// general_settings keys of tenancy (docs/tenants.md): the database, the key cache, the spend
// log's spool and the tiers.
Status parse_tenancy_settings(YamlSource& source, YamlMapping& settings, TenancyConfig* t) {
  if (Status s = settings.read_string("database_url", &t->database_url); !s) return s;
  if (!t->database_url.empty() && !t->database_url.starts_with("postgres://") &&
      !t->database_url.starts_with("postgresql://") && !t->database_url.starts_with("sqlite://")) {
    return source.error_at(settings.line(),
                           "general_settings.database_url must start with postgresql://, "
                           "postgres:// or sqlite://");
  }
  if (Status s = settings.read_string("database_path", &t->database_path); !s) return s;
  if (Status s = settings.read_string("spend_log_spool_dir", &t->spend_spool_dir); !s) return s;
  if (Status s = settings.read_number("user_api_key_cache_ttl", Minimum{}, &t->key_cache_ttl_s); !s)
    return s;
  if (Status s = settings.read_bool("disable_spend_logs", &t->disable_spend_logs); !s) return s;
  std::optional<YamlValue> tiers = settings.take("tiers");
  if (!tiers) return Ok{};
  Result<YamlMapping> names = YamlMapping::from(source, *tiers);
  if (!names.ok()) return names.error();
  for (const std::string& name : names->keys()) {
    std::optional<YamlValue> v = names->take(name);
    TierConfig tier;
    if (v) {
      Result<YamlMapping> m = YamlMapping::from(source, *v);
      if (!m.ok()) return m.error();
      using Field = std::pair<const char*, std::optional<int64_t>*>;
      for (auto [key, out] : std::initializer_list<Field>{
               {"rpm", &tier.rpm}, {"tpm", &tier.tpm}, {"tpd", &tier.tpd},
               {"max_parallel_requests", &tier.max_parallel_requests}}) {
        if (Status s = read_limit(*m, key, out); !s) return s;
      }
      // LiteLLM's names for the same limits.
      if (Status s = read_limit(*m, "rpm_limit", &tier.rpm); !s) return s;
      if (Status s = read_limit(*m, "tpm_limit", &tier.tpm); !s) return s;
      m->warn_unknown({});
    }
    t->tiers[name] = tier;
  }
  return Ok{};
}

Status parse_general_settings(YamlSource& source, const YamlValue& value, GatewayConfig* config) {
  Result<YamlMapping> settings = YamlMapping::from(source, value);
  if (!settings.ok()) return settings.error();
  if (std::optional<YamlValue> key = settings->take("master_key")) {
    Result<std::string> text = source.text(*key);
    if (!text.ok()) return text.error();
    // An empty key would silently turn authentication off.
    if (text->empty()) {
      return source.error_at(key->line, fmt::format("{} is empty; remove it to run without "
                                                    "authentication",
                                                    key->path));
    }
    config->master_key = std::move(*text);
  }
  if (std::optional<YamlValue> routes = settings->take("public_routes")) {
    Result<std::vector<std::string>> list = source.string_list(*routes);
    if (!list.ok()) return list.error();
    for (std::string& route : *list) {
      // LiteLLM also accepts names of its route groups ("LiteLLMRoutes.public_routes").
      if (!route.starts_with('/')) {
        source.warn_at(routes->line,
                       fmt::format("{}: '{}' is not a path; ignored", routes->path, route));
        continue;
      }
      config->public_routes.push_back(std::move(route));
    }
  }
  ONDOL_CONFIG_TRY(parse_tenancy_settings(source, *settings, &config->tenancy));
  LimitsConfig& limits = config->limits;
  ONDOL_CONFIG_TRY(settings->read_int("global_max_parallel_requests", 0,
                                      &limits.global_max_parallel_requests));
  ONDOL_CONFIG_TRY(settings->read_int("max_queue_size", 0, &limits.max_queue));
  ONDOL_CONFIG_TRY(settings->read_number("queue_timeout", Minimum{.strict = true},
                                         &limits.queue_timeout_s));
  settings->warn_unknown(config_detail::kAcceptedGeneralSettings);
  return Ok{};
}

// environment_variables: {NAME: value}: defaults for os.environ/NAME (the environment wins).
Status parse_environment_variables(YamlSource& source, const YamlValue& value) {
  Result<YamlMapping> vars = YamlMapping::from(source, value);
  if (!vars.ok()) return vars.error();
  std::map<std::string, std::string> defaults;
  for (const std::string& name : vars->keys()) {
    std::optional<YamlValue> v = vars->take(name);
    if (!v) continue;
    Result<std::string> text = source.text(*v);
    if (!text.ok()) return text.error();
    defaults[name] = std::move(*text);
  }
  source.set_env_defaults(std::move(defaults));
  return Ok{};
}

Status parse_model_list(YamlSource& source, const YamlValue& value, GatewayConfig* config) {
  if (!value.node.IsSequence()) {
    return source.error_at(value.line, fmt::format("model_list must be a list of deployments, "
                                                   "got {}",
                                                   YamlSource::describe(value.node)));
  }
  if (value.node.size() == 0) {
    return source.error_at(value.line, "model_list is empty: at least one deployment is needed");
  }
  size_t index = 0;
  for (const YAML::Node& element : value.node) {
    const int line = YamlSource::line_of(element);
    const YamlValue entry{.node = element,
                          .line = line > 0 ? line : value.line,
                          .path = fmt::format("model_list[{}]", index)};
    Result<DeploymentConfig> d = config_detail::parse_deployment(source, entry, index);
    if (!d.ok()) return d.error();
    config->deployments.push_back(std::move(*d));
    ++index;
  }
  return Ok{};
}

Status resolve_fallbacks(YamlSource& source, std::vector<PendingFallback> pending,
                         GatewayConfig* config) {
  const std::vector<std::string> names = config->model_names();
  auto known = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  auto unknown_error = [&](int line, const std::string& name) {
    return source.error_at(line, fmt::format("fallbacks: '{}' is not a model_name in model_list "
                                             "(known: {})",
                                             name, fmt::join(names, ", ")));
  };
  std::set<std::string> seen;
  for (PendingFallback& p : pending) {
    if (!known(p.rule.model_name)) return unknown_error(p.line, p.rule.model_name);
    if (!seen.insert(p.rule.model_name).second) {
      return source.error_at(p.line,
                             fmt::format("fallbacks for '{}' are given twice", p.rule.model_name));
    }
    for (size_t i = 0; i < p.rule.fallbacks.size(); ++i) {
      const std::string& target = p.rule.fallbacks[i];
      if (!known(target)) return unknown_error(p.target_lines[i], target);
      if (target == p.rule.model_name) {
        return source.error_at(p.target_lines[i],
                               fmt::format("fallbacks: '{}' falls back to itself", target));
      }
    }
    config->router.fallbacks.push_back(std::move(p.rule));
  }
  return Ok{};
}

// Settings that more than one section may give: router_settings wins over litellm_settings,
// as the LiteLLM Router's own arguments win over the litellm module defaults. Then a deployment
// without its own timeout takes request_timeout, and without stream_timeout its timeout.
Status resolve(YamlSource& source, Overrides overrides, GatewayConfig* config) {
  config->router.num_retries =
      overrides.router_num_retries.value_or(overrides.litellm_num_retries.value_or(0));
  if (overrides.litellm_request_timeout_s) {
    config->request_timeout_s = *overrides.litellm_request_timeout_s;
  }
  if (overrides.router_timeout_s) config->request_timeout_s = *overrides.router_timeout_s;
  for (DeploymentConfig& d : config->deployments) {
    if (d.timeout_s == 0) d.timeout_s = config->request_timeout_s;
    if (d.stream_timeout_s == 0) {
      d.stream_timeout_s = overrides.router_stream_timeout_s.value_or(d.timeout_s);
    }
  }

  std::map<std::string, const DeploymentConfig*> ids;
  for (const DeploymentConfig& d : config->deployments) {
    auto [it, inserted] = ids.emplace(d.id, &d);
    if (!inserted) {
      return source.error_at(d.line, fmt::format("deployment id '{}' is already used by the "
                                                 "deployment on line {}",
                                                 d.id, it->second->line));
    }
  }
  for (const std::string& name : config->model_names()) {
    const auto in_group = [&](const DeploymentConfig& d) { return d.model_name == name; };
    const bool all_zero =
        std::all_of(config->deployments.begin(), config->deployments.end(),
                    [&](const DeploymentConfig& d) { return !in_group(d) || d.weight == 0; });
    if (all_zero) {
      const auto first =
          std::find_if(config->deployments.begin(), config->deployments.end(), in_group);
      source.warn_at(first->line, fmt::format("every deployment of model '{}' has weight 0", name));
    }
  }

  std::optional<std::vector<PendingFallback>>& fallbacks =
      overrides.router_fallbacks ? overrides.router_fallbacks : overrides.litellm_fallbacks;
  if (fallbacks) return resolve_fallbacks(source, std::move(*fallbacks), config);
  return Ok{};
}

Status parse_document(const YAML::Node& root, YamlSource& source, GatewayConfig* config) {
  const YamlValue root_value{.node = root, .line = std::max(1, YamlSource::line_of(root))};
  Result<YamlMapping> top = YamlMapping::from(source, root_value);
  if (!top.ok()) return top.error();

  if (std::optional<YamlValue> include = top->take("include")) {
    return source.error_at(include->line,
                           "include is not supported: merge the included files "
                           "into this one");
  }
  // First: os.environ/NAME anywhere below may need these defaults.
  if (std::optional<YamlValue> env = top->take("environment_variables")) {
    ONDOL_CONFIG_TRY(parse_environment_variables(source, *env));
  }
  Overrides overrides;
  if (std::optional<YamlValue> v = top->take("litellm_settings")) {
    ONDOL_CONFIG_TRY(parse_litellm_settings(source, *v, config, &overrides));
  }
  if (std::optional<YamlValue> v = top->take("router_settings")) {
    ONDOL_CONFIG_TRY(parse_router_settings(source, *v, config, &overrides));
  }
  if (std::optional<YamlValue> v = top->take("general_settings")) {
    ONDOL_CONFIG_TRY(parse_general_settings(source, *v, config));
  }
  Result<YamlValue> models = top->take_required("model_list");
  if (!models.ok()) return models.error();
  ONDOL_CONFIG_TRY(parse_model_list(source, *models, config));
  top->warn_unknown(config_detail::kAcceptedTopLevelKeys);
  return resolve(source, std::move(overrides), config);
}

#undef ONDOL_CONFIG_TRY

// 1-based line of the first line that is neither blank nor a comment nor a document marker;
// 0 when there is none.
int first_content_line(std::string_view text) {
  int line = 1;
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t end = std::min(text.find('\n', begin), text.size());
    std::string_view l = text.substr(begin, end - begin);
    const size_t first = l.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && l[first] != '#' && l.substr(first) != "---" &&
        l.substr(first) != "...") {
      return line;
    }
    begin = end + 1;
    ++line;
  }
  return 0;
}

}  // namespace

const char* to_string(RoutingStrategy s) {
  switch (s) {
    case RoutingStrategy::SimpleShuffle:
      return "simple-shuffle";
    case RoutingStrategy::LeastBusy:
      return "least-busy";
    case RoutingStrategy::LatencyBased:
      return "latency-based-routing";
  }
  return "unknown";
}

std::vector<std::string> GatewayConfig::model_names() const {
  std::vector<std::string> names;
  for (const DeploymentConfig& d : deployments) {
    if (std::find(names.begin(), names.end(), d.model_name) == names.end()) {
      names.push_back(d.model_name);
    }
  }
  return names;
}

Result<GatewayConfig> parse_config(const std::string& yaml_text, const std::string& source_name) {
  GatewayConfig config;
  config.source = source_name;
  YamlSource source(source_name);

  // YAML::Load, not LoadAll: yaml-cpp 0.7's LoadAll loops forever, allocating, on some invalid
  // input (a line starting with ','; yaml-cpp issue #1040). Later documents are not read.
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return source.error_at(e.mark.line + 1, fmt::format("YAML syntax error at column {}: {}",
                                                        e.mark.column + 1, e.msg));
  }
  if (root.IsNull()) {
    // yaml-cpp also yields an empty document for some invalid text; point at it if there is any.
    if (const int line = first_content_line(yaml_text); line > 0) {
      return source.error_at(line, "YAML syntax error: no document could be read from here");
    }
    return source.error_at(1, "the configuration is empty: model_list is required");
  }
  // yaml-cpp throws only from node access misuse; the parsers check types first, so this is a
  // last guard that keeps a yaml-cpp surprise a config error rather than a crash.
  try {
    if (Status s = parse_document(root, source, &config); !s.ok()) return s.error();
  } catch (const YAML::Exception& e) {
    return source.error_at(e.mark.line + 1, fmt::format("invalid configuration: {}", e.msg));
  }
  config.warnings = source.sorted_warnings();
  return config;
}

Result<GatewayConfig> load_config_file(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return make_error(fmt::format("cannot read config file '{}': {}", path,
                                  ec ? ec.message() : std::strerror(ENOENT)));
  }
  if (std::filesystem::is_directory(status)) {
    return make_error(fmt::format("cannot read config file '{}': it is a directory", path));
  }
  if (std::filesystem::is_regular_file(status)) {
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size > kMaxConfigFileBytes) {
      return make_error(fmt::format("config file '{}' is {} bytes; more than {} is not a config",
                                    path, size, kMaxConfigFileBytes));
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(fmt::format("cannot read config file '{}': {}", path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return make_error(fmt::format("cannot read config file '{}': read error", path));
  }
  return parse_config(text.str(), path);
}

}  // namespace ondol::gateway
