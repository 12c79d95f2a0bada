#include "bench/commands.h"

#include <utility>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <sys/resource.h>
#include <boost/asio.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "http/url.h"

namespace ondol::bench {

namespace asio = boost::asio;

namespace {

constexpr std::chrono::milliseconds kModelListTimeout{10'000};

asio::awaitable<void> fetch_models(const http::UpstreamTarget& target, std::string path,
                                   http::ClientResponse& response, std::string& body) {
  std::chrono::milliseconds timeout = kModelListTimeout;
  std::string* body_out = &body;
  response = co_await http::get_once(target, path, timeout, body_out);
}

// The first model the server lists, as vLLM's benchmark picks one when --model is not given.
Result<std::string> first_served_model(const http::UpstreamTarget& target) {
  asio::io_context ctx;
  http::ClientResponse response;
  std::string body;
  std::string path = target.url.path_prefix.ends_with("/v1") ? "/models" : "/v1/models";
  asio::co_spawn(ctx, fetch_models(target, path, response, body), asio::detached);
  ctx.run();
  if (response.failure != http::ClientFailure::None)
    return make_error(
        fmt::format("GET {}{}: {}", target.url.origin(), path, response.failure_message));
  if (response.status != 200)
    return make_error(
        fmt::format("GET {}: {}", path, describe_http_error(response.status, response.error_body)));
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("data") || !d["data"].IsArray() ||
      d["data"].Empty() || !d["data"][0].IsObject() || !d["data"][0].HasMember("id") ||
      !d["data"][0]["id"].IsString())
    return make_error(fmt::format("GET {} listed no model; pass --model", path));
  return std::string(d["data"][0]["id"].GetString());
}

}  // namespace

Result<Endpoint> resolve_endpoint(ServerFlags& f) {
  Endpoint e;
  if (f.backend.empty()) {
    f.backend = f.endpoint.find("chat") != std::string::npos ? "openai-chat" : "openai";
  }
  if (f.backend != "openai" && f.backend != "openai-chat")
    return make_error("--backend '" + f.backend + "': expected openai or openai-chat");
  e.api = f.backend == "openai-chat" ? ApiKind::Chat : ApiKind::Completions;
  if (f.endpoint.empty())
    f.endpoint = e.api == ApiKind::Chat ? "/v1/chat/completions" : "/v1/completions";
  std::string url = f.base_url.empty() ? fmt::format("http://{}:{}", f.host, f.port) : f.base_url;
  auto parsed = http::parse_url(url);
  if (!parsed) return make_error("--base-url '" + url + "': " + parsed.error().message);
  e.target.url = *parsed;
  if (f.api_key.empty()) {
    if (const char* env = std::getenv("OPENAI_API_KEY")) f.api_key = env;
  }
  e.target.api_key = f.api_key;
  e.path = f.endpoint;
  e.backend = f.backend;
  return e;
}

Status resolve_model(ServerFlags& f, const Endpoint& e) {
  if (!f.model.empty()) return Ok{};
  auto model = first_served_model(e.target);
  if (!model) return model.error();
  f.model = *model;
  return Ok{};
}

Status write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error("cannot write " + path);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return make_error("cannot write " + path);
  return Ok{};
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void raise_open_files_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace ondol::bench
