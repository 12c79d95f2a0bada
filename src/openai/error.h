// OpenAI error bodies: {"error":{"message","type","param","code"}} with the HTTP status that
// goes with them. Every failure the gateway reports to a client is built here, so clients
// (the official SDKs map status codes to exception classes) always see one shape.
#pragma once

#include <string>
#include <string_view>

namespace ondol::openai {

struct ApiError {
  int status = 500;
  std::string message;
  std::string type = "server_error";  // invalid_request_error, authentication_error, ...
  std::string param;                  // empty: null
  std::string code;                   // empty: null

  std::string to_json() const;
};

ApiError invalid_request(std::string message, std::string param = {});
ApiError model_not_found(std::string_view model);
ApiError authentication_error(std::string message);
ApiError not_found_path(std::string_view path);
ApiError method_not_allowed(std::string_view method, std::string_view path);
ApiError payload_too_large(size_t limit_bytes);
ApiError headers_too_large(size_t limit_bytes);
ApiError request_timeout(std::string message);
ApiError upstream_timeout(std::string message);
ApiError bad_gateway(std::string message);
ApiError service_unavailable(std::string message);
ApiError rate_limited(std::string message);
ApiError internal_error(std::string message);

// The exception class name LiteLLM reports in its metrics for this status (bounded set).
std::string_view exception_class_for_status(int status);

}  // namespace ondol::openai
