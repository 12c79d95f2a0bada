#include "openai/error.h"

#include <fmt/format.h>

#include "common/log.h"

namespace ondol::openai {

std::string ApiError::to_json() const {
  std::string out;
  out.reserve(128 + message.size());
  out.append("{\"error\":{\"message\":");
  log::append_json_string(out, message);
  out.append(",\"type\":");
  log::append_json_string(out, type);
  out.append(",\"param\":");
  if (param.empty()) out.append("null");
  else log::append_json_string(out, param);
  out.append(",\"code\":");
  if (code.empty()) out.append("null");
  else log::append_json_string(out, code);
  out.append("}}");
  return out;
}

ApiError invalid_request(std::string message, std::string param) {
  return {400, std::move(message), "invalid_request_error", std::move(param), {}};
}
ApiError model_not_found(std::string_view model) {
  return {404, fmt::format("The model '{}' does not exist or you do not have access to it.", model),
          "invalid_request_error", "model", "model_not_found"};
}
ApiError authentication_error(std::string message) {
  return {401, std::move(message), "authentication_error", {}, "invalid_api_key"};
}
ApiError not_found_path(std::string_view path) {
  return {404, fmt::format("Unknown path '{}'.", path), "invalid_request_error", {}, "not_found"};
}
ApiError method_not_allowed(std::string_view method, std::string_view path) {
  return {405, fmt::format("Method {} is not allowed on '{}'.", method, path),
          "invalid_request_error", {}, "method_not_allowed"};
}
ApiError payload_too_large(size_t limit_bytes) {
  return {413, fmt::format("Request body is larger than the limit of {} bytes.", limit_bytes),
          "invalid_request_error", {}, "payload_too_large"};
}
ApiError headers_too_large(size_t limit_bytes) {
  return {431, fmt::format("Request headers are larger than the limit of {} bytes.", limit_bytes),
          "invalid_request_error", {}, "headers_too_large"};
}
ApiError request_timeout(std::string message) {
  return {408, std::move(message), "invalid_request_error", {}, "request_timeout"};
}
ApiError upstream_timeout(std::string message) {
  return {504, std::move(message), "timeout_error", {}, "upstream_timeout"};
}
ApiError bad_gateway(std::string message) {
  return {502, std::move(message), "api_error", {}, "bad_gateway"};
}
ApiError service_unavailable(std::string message) {
  return {503, std::move(message), "service_unavailable_error", {}, "service_unavailable"};
}
ApiError rate_limited(std::string message) {
  return {429, std::move(message), "rate_limit_error", {}, "rate_limit_exceeded"};
}
ApiError internal_error(std::string message) {
  return {500, std::move(message), "server_error", {}, "internal_error"};
}

std::string_view exception_class_for_status(int status) {
  switch (status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 408: return "Timeout";
    case 413: return "BadRequestError";
    case 422: return "UnprocessableEntityError";
    case 429: return "RateLimitError";
    case 502: return "APIConnectionError";
    case 503: return "ServiceUnavailableError";
    case 504: return "Timeout";
    default: return status >= 500 ? "InternalServerError" : "APIError";
  }
}

}  // namespace ondol::openai
