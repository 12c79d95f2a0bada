// Internal to the config loader: one model_list entry → DeploymentConfig.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/config/yaml_source.h"

namespace ondol::gateway::config_detail {

// Where a provider without its own api_base is reached.
inline constexpr std::string_view kOpenAIDefaultApiBase = "https://api.openai.com/v1";

// Parses and validates entry (position index in model_list). Timeouts are left as written
// (0 = inherit); parse_config resolves them once every section is known.
Result<DeploymentConfig> parse_deployment(YamlSource& source, const YamlValue& entry, size_t index);

// "http://host:8000/v1/" → "http://host:8000/v1": http(s) scheme (lower-cased), a host, an
// optional numeric port, no whitespace, query or fragment; trailing slashes removed.
Result<std::string> normalise_api_base(std::string_view text);

// Stable short id of a deployment without model_info.id: 12 hex digits of FNV-1a 64 over its
// model_name, model, api_base and position. Independent of std::hash, so it is the same on
// every build and machine.
std::string derive_deployment_id(const DeploymentConfig& d, size_t index);

}  // namespace ondol::gateway::config_detail
