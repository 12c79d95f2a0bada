#include "gateway/config/deployment_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>

#include <fmt/format.h>

#include "gateway/config/accepted_keys.h"
#include "gateway/config/yaml_mapping.h"

namespace ondol::gateway::config_detail {
namespace {

constexpr std::string_view kDefaultProvider = "openai";  // a model without "PROVIDER/"
constexpr std::string_view kMockProvider = "mock";
constexpr std::string_view kLocalProvider = "local";

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr int kDerivedIdHexDigits = 12;
// Separates hashed fields so that ("ab","c") and ("a","bc") hash differently.
constexpr char kFieldSeparator = '\x1f';

constexpr int kMaxPort = 65535;

uint64_t fnv1a64(std::string_view bytes, uint64_t hash) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= kFnvPrime;
  }
  return hash;
}

// Keys read only for the mock provider, with where they go and their lower bound.
struct MockKey {
  std::string_view key;
  double MockParams::*number = nullptr;
  int MockParams::*integer = nullptr;
  int min_integer = 0;
};
constexpr MockKey kMockKeys[] = {
    {.key = "mock_response_latency_ms", .number = &MockParams::response_latency_ms},
    {.key = "mock_chunk_delay_ms", .number = &MockParams::chunk_delay_ms},
    {.key = "mock_tokens_per_chunk", .integer = &MockParams::tokens_per_chunk, .min_integer = 1},
    {.key = "mock_output_tokens", .integer = &MockParams::output_tokens, .min_integer = 0},
};

Status read_mock_params(YamlMapping& params, DeploymentConfig* d) {
  for (const MockKey& k : kMockKeys) {
    if (d->kind != ProviderKind::Mock) {
      if (std::optional<YamlValue> v = params.take(k.key)) {
        params.source().warn_at(v->line, fmt::format("{} is used only by the mock provider; "
                                                     "ignored for provider '{}'",
                                                     v->path, d->provider));
      }
      continue;
    }
    Status s = k.number != nullptr
                   ? params.read_number(k.key, Minimum{.value = 0}, &(d->mock.*k.number))
                   : params.read_int(k.key, k.min_integer, &(d->mock.*k.integer));
    if (!s.ok()) return s;
  }
  return Ok{};
}

// Engine settings, read only for the local provider.
Status read_local_params(YamlMapping& params, DeploymentConfig* d) {
  struct Key {
    std::string_view key;
    int LocalEngineParams::*field;
    int min;
  };
  static constexpr Key kKeys[] = {
      {"num_threads", &LocalEngineParams::num_threads, 0},
      {"max_model_len", &LocalEngineParams::max_model_len, 0},
      {"max_num_seqs", &LocalEngineParams::max_num_seqs, 0},
      {"max_num_batched_tokens", &LocalEngineParams::max_num_batched_tokens, 0},
      {"max_num_queued_requests", &LocalEngineParams::max_num_queued_requests, 0},
      {"block_size", &LocalEngineParams::block_size, 0},
  };
  if (d->kind != ProviderKind::Local) return Ok{};  // elsewhere these keys stay unknown
  for (const Key& k : kKeys) {
    if (Status s = params.read_int(k.key, k.min, &(d->local.*k.field)); !s.ok()) return s;
  }
  if (Status s = params.read_bool("enable_prefix_caching", &d->local.enable_prefix_caching); !s.ok())
    return s;
  if (std::optional<YamlValue> v = params.take("kv_cache_memory")) {
    Result<std::string> text = params.source().text(*v);
    if (!text.ok()) return text.error();
    Result<MemorySize> size = parse_memory_size(*text);
    if (!size.ok()) return params.source().error_at(v->line, v->path + ": " + size.error().message);
    d->local.kv_cache_memory = *size;
  }
  if (std::optional<YamlValue> v = params.take("kv_cache_dtype")) {
    Result<std::string> text = params.source().text(*v);
    if (!text.ok()) return text.error();
    // The engine's names (engine/model/kv_cache.h parse_kv_dtype), checked here so that
    // `ondol check` reports a typo with its line.
    static constexpr std::string_view kDtypes[] = {"auto", "float16", "float32", "int8"};
    if (std::find(std::begin(kDtypes), std::end(kDtypes), *text) == std::end(kDtypes)) {
      return params.source().error_at(
          v->line, v->path + ": '" + *text + "' is not one of auto, float16, float32, int8");
    }
    d->local.kv_cache_dtype = *text;
  }
  return Ok{};
}

// "hosted_vllm/meta-llama/Llama-3.1-8B" → provider and upstream model; custom_llm_provider, as in
// LiteLLM, names the provider explicitly (a matching prefix on model is then stripped).
Status split_provider(YamlSource& source, const YamlValue& model_value,
                      const std::string& custom_provider, DeploymentConfig* d) {
  if (!custom_provider.empty()) {
    d->provider = custom_provider;
    const std::string prefix = custom_provider + "/";
    d->upstream_model = d->model.rfind(prefix, 0) == 0 ? d->model.substr(prefix.size()) : d->model;
  } else if (const size_t slash = d->model.find('/'); slash == std::string::npos) {
    d->provider = kDefaultProvider;
    d->upstream_model = d->model;
  } else {
    d->provider = d->model.substr(0, slash);
    d->upstream_model = d->model.substr(slash + 1);
  }
  if (d->provider.empty() || d->upstream_model.empty()) {
    return source.error_at(model_value.line,
                           fmt::format("{} must look like PROVIDER/MODEL (e.g. "
                                       "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct), got '{}'",
                                       model_value.path, d->model));
  }
  d->kind = d->provider == kMockProvider    ? ProviderKind::Mock
            : d->provider == kLocalProvider ? ProviderKind::Local
                                            : ProviderKind::OpenAICompatible;
  return Ok{};
}

Status resolve_api_base(YamlMapping& params, DeploymentConfig* d) {
  YamlSource& source = params.source();
  std::optional<YamlValue> value = params.take("api_base");
  std::string text;
  if (value) {
    Result<std::string> s = source.text(*value);
    if (!s.ok()) return s.error();
    text = std::move(*s);
  }
  if (d->kind == ProviderKind::Mock || d->kind == ProviderKind::Local) {
    if (!text.empty()) {
      source.warn_at(value->line, fmt::format("{} is not used by the {} provider; ignored",
                                              value->path, d->provider));
    }
    d->api_base.clear();
    return Ok{};
  }
  if (text.empty()) {
    if (d->provider != kDefaultProvider) {
      const int line = value ? value->line : params.line();
      return source.error_at(line, fmt::format("{}.api_base is required for provider '{}'",
                                               params.path(), d->provider));
    }
    text = kOpenAIDefaultApiBase;
  }
  Result<std::string> normalised = normalise_api_base(text);
  if (!normalised.ok()) {
    return source.error_at(
        value ? value->line : params.line(),
        fmt::format("{}.api_base {}", params.path(), normalised.error().message));
  }
  d->api_base = std::move(*normalised);
  return Ok{};
}

// ssl_verify is a boolean, or (as httpx's verify= in LiteLLM) the path of a CA bundle.
Status read_ssl(YamlMapping& params, DeploymentConfig* d) {
  if (std::optional<YamlValue> v = params.take("ssl_verify")) {
    Result<bool> b = params.source().boolean(*v);
    if (b.ok()) {
      d->ssl_verify = *b;
    } else {
      Result<std::string> path = params.source().text(*v);
      if (!path.ok()) return path.error();
      d->ssl_verify = true;
      d->ssl_ca_file = std::move(*path);
    }
  }
  return params.read_string("ssl_ca_file", &d->ssl_ca_file);
}

// Prices in USD per token, where a section gives them.
struct Costs {
  std::optional<double> input_per_token;
  std::optional<double> output_per_token;
};

Status read_costs(YamlMapping& m, Costs* costs) {
  if (Status s = m.read_number("input_cost_per_token", Minimum{}, &costs->input_per_token);
      !s.ok()) {
    return s;
  }
  return m.read_number("output_cost_per_token", Minimum{}, &costs->output_per_token);
}

Status read_model_info(YamlSource& source, const YamlValue& value, std::string* id, Costs* costs) {
  Result<YamlMapping> info = YamlMapping::from(source, value);
  if (!info.ok()) return info.error();
  if (std::optional<YamlValue> v = info->take("id")) {
    Result<std::string> s = source.text(*v);
    if (!s.ok()) return s.error();
    if (s->empty()) return source.error_at(v->line, fmt::format("{} is empty", v->path));
    *id = std::move(*s);
  }
  if (Status s = read_costs(*info, costs); !s.ok()) return s;
  info->take_all();  // model_info is free-form metadata in LiteLLM
  return Ok{};
}

Status read_litellm_params(YamlSource& source, const YamlValue& value, DeploymentConfig* d,
                           Costs* costs) {
  Result<YamlMapping> params_or = YamlMapping::from(source, value);
  if (!params_or.ok()) return params_or.error();
  YamlMapping& params = *params_or;

  Result<YamlValue> model = params.take_required("model");
  if (!model.ok()) return model.error();
  Result<std::string> model_text = source.text(*model);
  if (!model_text.ok()) return model_text.error();
  d->model = std::move(*model_text);
  std::string custom_provider;
  if (Status s = params.read_string("custom_llm_provider", &custom_provider); !s.ok()) return s;
  if (Status s = split_provider(source, *model, custom_provider, d); !s.ok()) return s;

  // Read in this order, so that the first problem in the file is the one reported.
  const Status statuses[] = {
      resolve_api_base(params, d),
      params.read_string("api_key", &d->api_key),
      params.read_number("timeout", Minimum{}, &d->timeout_s),
      params.read_number("stream_timeout", Minimum{}, &d->stream_timeout_s),
      params.read_int("rpm", 0, &d->rpm),
      params.read_int("tpm", 0, &d->tpm),
      params.read_int("weight", 0, &d->weight),
      params.read_int("max_parallel_requests", 1, &d->max_parallel_requests),
      params.read_int("order", 0, &d->order),
      read_ssl(params, d),
      read_costs(params, costs),
      read_mock_params(params, d),
      read_local_params(params, d),
  };
  for (const Status& s : statuses) {
    if (!s.ok()) return s;
  }
  for (std::string_view key : kNotAppliedLitellmParams) {
    if (std::optional<YamlValue> v = params.take(key)) {
      source.warn_at(v->line, fmt::format("{} is accepted but not applied: ondol does not add it "
                                          "to upstream requests",
                                          v->path));
    }
  }
  params.warn_unknown(kAcceptedLitellmParams);
  return Ok{};
}

}  // namespace

Result<std::string> normalise_api_base(std::string_view text) {
  std::string url(text);
  const size_t scheme_end = url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https") {
    return make_error(fmt::format("must be an http:// or https:// URL, got '{}'", text));
  }
  url.replace(0, scheme_end, scheme);
  if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return std::isspace(c); })) {
    return make_error(fmt::format("must not contain whitespace, got '{}'", text));
  }
  if (url.find_first_of("?#") != std::string::npos) {
    return make_error(fmt::format("must not contain a query or fragment, got '{}'", text));
  }
  const size_t authority_begin = scheme_end + 3;
  const size_t authority_end = std::min(url.find('/', authority_begin), url.size());
  std::string_view authority(url.data() + authority_begin, authority_end - authority_begin);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);  // user:password@ is allowed (and hidden when printed)
  }
  // "[::1]:8000" or "host:8000"
  const size_t host_end = authority.starts_with('[') ? authority.find(']') : authority.find(':');
  if (authority.starts_with('[') && host_end == std::string_view::npos) {
    return make_error(fmt::format("has an unclosed '[' in its host, got '{}'", text));
  }
  const std::string_view host = authority.starts_with('[') ? authority.substr(0, host_end + 1)
                                                           : authority.substr(0, host_end);
  if (host.empty() || host == "[]") {
    return make_error(fmt::format("has no host, got '{}'", text));
  }
  const size_t port_colon = authority.find(':', host.size());
  if (port_colon != std::string_view::npos) {
    const std::string_view port = authority.substr(port_colon + 1);
    int port_number = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || port_number < 1 ||
        port_number > kMaxPort || port_colon != host.size()) {
      return make_error(fmt::format("has an invalid port, got '{}'", text));
    }
  }
  while (url.size() > authority_end && url.back() == '/') url.pop_back();
  return url;
}

std::string derive_deployment_id(const DeploymentConfig& d, size_t index) {
  uint64_t hash = kFnvOffsetBasis;
  for (std::string_view field :
       {std::string_view(d.model_name), std::string_view(d.model), std::string_view(d.api_base)}) {
    hash = fnv1a64(field, hash);
    hash = fnv1a64(std::string_view(&kFieldSeparator, 1), hash);
  }
  hash = fnv1a64(std::to_string(index), hash);
  return fmt::format("{:016x}", hash).substr(0, kDerivedIdHexDigits);
}

Result<DeploymentConfig> parse_deployment(YamlSource& source, const YamlValue& entry,
                                          size_t index) {
  Result<YamlMapping> m = YamlMapping::from(source, entry);
  if (!m.ok()) return m.error();
  DeploymentConfig d;
  d.line = entry.line;

  Result<YamlValue> name = m->take_required("model_name");
  if (!name.ok()) return name.error();
  Result<std::string> name_text = source.text(*name);
  if (!name_text.ok()) return name_text.error();
  if (name_text->empty()) return source.error_at(name->line, name->path + " is empty");
  d.model_name = std::move(*name_text);

  Result<YamlValue> params = m->take_required("litellm_params");
  if (!params.ok()) return params.error();
  Costs param_costs;
  if (Status s = read_litellm_params(source, *params, &d, &param_costs); !s.ok()) {
    return s.error();
  }
  // LiteLLM also reads rpm/tpm beside litellm_params; litellm_params wins.
  std::optional<int> entry_rpm;
  std::optional<int> entry_tpm;
  if (Status s = m->read_int("rpm", 0, &entry_rpm); !s.ok()) return s.error();
  if (Status s = m->read_int("tpm", 0, &entry_tpm); !s.ok()) return s.error();
  if (!d.rpm) d.rpm = entry_rpm;
  if (!d.tpm) d.tpm = entry_tpm;

  Costs info_costs;
  if (std::optional<YamlValue> info = m->take("model_info")) {
    if (Status s = read_model_info(source, *info, &d.id, &info_costs); !s.ok()) return s.error();
  }
  m->warn_unknown({});  // an entry has no keys that are accepted and ignored

  // LiteLLM's cost tracking reads prices from litellm_params; they win over model_info's.
  d.input_cost_per_token =
      param_costs.input_per_token.value_or(info_costs.input_per_token.value_or(0));
  d.output_cost_per_token =
      param_costs.output_per_token.value_or(info_costs.output_per_token.value_or(0));
  if (d.id.empty()) d.id = derive_deployment_id(d, index);
  return d;
}

}  // namespace ondol::gateway::config_detail
