// OpenAI request bodies as the gateway sees them: parsed once at the edge, validated, and kept
// as a JSON document so that fields ondol does not know pass upstream untouched.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "openai/error.h"

namespace ondol::openai {

enum class Endpoint { ChatCompletions, Completions, Embeddings };

// "/chat/completions", "/completions", "/embeddings": appended to a deployment's api_base.
std::string_view upstream_path(Endpoint endpoint);
std::string_view to_string(Endpoint endpoint);

struct ProxyRequest {
  Endpoint endpoint = Endpoint::ChatCompletions;
  std::string model;
  bool stream = false;
  bool include_usage = false;              // stream_options.include_usage
  std::optional<int64_t> max_tokens;       // max_tokens or max_completion_tokens
  int64_t prompt_tokens_estimate = 0;      // for budgets before usage is known: bytes / 4
  rapidjson::Document body;
};

// Parses and validates; every rejection is a 400 naming the offending parameter.
std::variant<ProxyRequest, ApiError> parse_request(Endpoint endpoint, std::string_view body);

// The body to send to a deployment: `model` replaced by the deployment's model, and with
// drop_params the fields outside the OpenAI API removed.
std::string upstream_body(const ProxyRequest& request, std::string_view upstream_model,
                          bool drop_params);

}  // namespace ondol::openai
