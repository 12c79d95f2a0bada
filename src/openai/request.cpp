#include "openai/request.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace ondol::openai {
namespace {

using rapidjson::Value;

constexpr int64_t kMaxN = 128;
constexpr size_t kMaxStopSequences = 4;

// Parameters of the OpenAI API (chat, completions, embeddings) plus the common vLLM sampling
// extensions; drop_params keeps only these.
constexpr std::array kKnownParams = {
    "model", "messages", "prompt", "input", "stream", "stream_options", "max_tokens",
    "max_completion_tokens", "temperature", "top_p", "n", "stop", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "seed", "tools",
    "tool_choice", "parallel_tool_calls", "response_format", "suffix", "echo", "best_of",
    "encoding_format", "dimensions", "functions", "function_call", "top_k", "min_p",
    "repetition_penalty", "ignore_eos", "metadata", "store", "service_tier", "modalities",
    "reasoning_effort", "prediction", "audio", "web_search_options"};

bool is_known_param(std::string_view name) {
  return std::find(kKnownParams.begin(), kKnownParams.end(), name) != kKnownParams.end();
}

std::optional<ApiError> check_number(const Value& body, const char* name, double lo, double hi) {
  auto it = body.FindMember(name);
  if (it == body.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsNumber())
    return invalid_request(fmt::format("'{}' must be a number.", name), name);
  double v = it->value.GetDouble();
  if (v < lo || v > hi)
    return invalid_request(fmt::format("'{}' must be between {} and {}, got {}.", name, lo, hi, v),
                           name);
  return std::nullopt;
}

std::optional<ApiError> check_positive_int(const Value& body, const char* name, int64_t hi,
                                           std::optional<int64_t>* out = nullptr) {
  auto it = body.FindMember(name);
  if (it == body.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsInt64())
    return invalid_request(fmt::format("'{}' must be an integer.", name), name);
  int64_t v = it->value.GetInt64();
  if (v < 1 || v > hi)
    return invalid_request(fmt::format("'{}' must be between 1 and {}, got {}.", name, hi, v),
                           name);
  if (out) *out = v;
  return std::nullopt;
}

std::optional<ApiError> check_messages(const Value& body, int64_t& text_bytes) {
  auto it = body.FindMember("messages");
  if (it == body.MemberEnd())
    return invalid_request("'messages' is a required property.", "messages");
  if (!it->value.IsArray() || it->value.Empty())
    return invalid_request("'messages' must be a non-empty array.", "messages");
  size_t i = 0;
  for (const auto& m : it->value.GetArray()) {
    std::string param = fmt::format("messages.[{}]", i++);
    if (!m.IsObject()) return invalid_request(param + " must be an object.", param);
    auto role = m.FindMember("role");
    if (role == m.MemberEnd() || !role->value.IsString())
      return invalid_request(param + ".role is required and must be a string.", param + ".role");
    std::string_view r(role->value.GetString(), role->value.GetStringLength());
    if (r != "system" && r != "user" && r != "assistant" && r != "tool" && r != "function" &&
        r != "developer")
      return invalid_request(fmt::format("{}.role '{}' is not one of system, user, assistant, "
                                         "tool, function, developer.", param, r),
                             param + ".role");
    auto content = m.FindMember("content");
    if (content != m.MemberEnd()) {
      if (content->value.IsString()) {
        text_bytes += content->value.GetStringLength();
      } else if (!content->value.IsArray() && !content->value.IsNull()) {
        return invalid_request(param + ".content must be a string, an array of parts or null.",
                               param + ".content");
      }
    }
  }
  return std::nullopt;
}

std::optional<ApiError> check_text_or_array(const Value& body, const char* name,
                                            int64_t& text_bytes) {
  auto it = body.FindMember(name);
  if (it == body.MemberEnd())
    return invalid_request(fmt::format("'{}' is a required property.", name), name);
  const Value& v = it->value;
  if (v.IsString()) {
    text_bytes += v.GetStringLength();
    return std::nullopt;
  }
  if (v.IsArray() && !v.Empty()) {
    for (const auto& e : v.GetArray()) {
      if (e.IsString()) text_bytes += e.GetStringLength();
      else if (e.IsInt64() || e.IsArray()) text_bytes += 4;  // token ids
      else
        return invalid_request(
            fmt::format("'{}' must be a string, an array of strings or of token ids.", name),
            name);
    }
    return std::nullopt;
  }
  return invalid_request(
      fmt::format("'{}' must be a non-empty string or array.", name), name);
}

}  // namespace

std::string_view upstream_path(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::ChatCompletions: return "/chat/completions";
    case Endpoint::Completions: return "/completions";
    case Endpoint::Embeddings: return "/embeddings";
  }
  return "/chat/completions";
}

std::string_view to_string(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::ChatCompletions: return "chat_completions";
    case Endpoint::Completions: return "completions";
    case Endpoint::Embeddings: return "embeddings";
  }
  return "chat_completions";
}

std::variant<ProxyRequest, ApiError> parse_request(Endpoint endpoint, std::string_view text) {
  ProxyRequest req;
  req.endpoint = endpoint;
  auto& body = req.body;
  body.Parse(text.data(), text.size());
  if (body.HasParseError()) {
    return invalid_request(
        fmt::format("We could not parse the JSON body of your request: {} (at byte {}).",
                    rapidjson::GetParseError_En(body.GetParseError()), body.GetErrorOffset()));
  }
  if (!body.IsObject()) return invalid_request("The request body must be a JSON object.");

  auto model = body.FindMember("model");
  if (model == body.MemberEnd())
    return invalid_request("'model' is a required property.", "model");
  if (!model->value.IsString() || model->value.GetStringLength() == 0)
    return invalid_request("'model' must be a non-empty string.", "model");
  req.model.assign(model->value.GetString(), model->value.GetStringLength());

  int64_t text_bytes = 0;
  std::optional<ApiError> err;
  switch (endpoint) {
    case Endpoint::ChatCompletions: err = check_messages(body, text_bytes); break;
    case Endpoint::Completions: err = check_text_or_array(body, "prompt", text_bytes); break;
    case Endpoint::Embeddings: err = check_text_or_array(body, "input", text_bytes); break;
  }
  if (err) return *err;

  if (auto it = body.FindMember("stream"); it != body.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsBool()) return invalid_request("'stream' must be a boolean.", "stream");
    req.stream = it->value.GetBool();
  }
  if (auto it = body.FindMember("stream_options");
      it != body.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsObject())
      return invalid_request("'stream_options' must be an object.", "stream_options");
    auto usage = it->value.FindMember("include_usage");
    if (usage != it->value.MemberEnd()) {
      if (!usage->value.IsBool())
        return invalid_request("'stream_options.include_usage' must be a boolean.",
                               "stream_options.include_usage");
      req.include_usage = usage->value.GetBool();
    }
  }
  if (endpoint == Endpoint::Embeddings && req.stream)
    return invalid_request("Embeddings cannot be streamed.", "stream");

  if ((err = check_positive_int(body, "max_tokens", INT32_MAX, &req.max_tokens))) return *err;
  if ((err = check_positive_int(body, "max_completion_tokens", INT32_MAX, &req.max_tokens)))
    return *err;
  if ((err = check_positive_int(body, "n", kMaxN))) return *err;
  if ((err = check_number(body, "temperature", 0, 2))) return *err;
  if ((err = check_number(body, "top_p", 0, 1))) return *err;
  if ((err = check_number(body, "presence_penalty", -2, 2))) return *err;
  if ((err = check_number(body, "frequency_penalty", -2, 2))) return *err;
  if (auto it = body.FindMember("stop"); it != body.MemberEnd() && !it->value.IsNull()) {
    const Value& s = it->value;
    bool ok = s.IsString();
    if (s.IsArray()) {
      ok = s.Size() <= kMaxStopSequences;
      for (const auto& e : s.GetArray()) ok = ok && e.IsString();
    }
    if (!ok)
      return invalid_request(
          fmt::format("'stop' must be a string or an array of at most {} strings.",
                      kMaxStopSequences),
          "stop");
  }
  req.prompt_tokens_estimate = std::max<int64_t>(1, text_bytes / 4);
  return req;
}

std::string upstream_body(const ProxyRequest& request, std::string_view upstream_model,
                          bool drop_params) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  for (const auto& m : request.body.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    if (drop_params && !is_known_param(name)) continue;
    writer.Key(m.name.GetString(), m.name.GetStringLength());
    if (name == "model") {
      writer.String(upstream_model.data(), static_cast<rapidjson::SizeType>(upstream_model.size()));
    } else {
      m.value.Accept(writer);
    }
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace ondol::openai
