// The in-process engine as a backend (`local/PATH.gguf`): OpenAI JSON in, the engine's
// EngineRequest to it, its output back as OpenAI JSON or SSE through the same BodySink an HTTP
// upstream's bytes go through, so the relay, metrics and logs do not know the difference.
#include <utility>

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <mutex>

#include "common/log.h"
#include "engine/engine.h"
#include "gateway/backends/backend.h"
#include "openai/error.h"

namespace ondol::gateway {

namespace asio = boost::asio;

namespace {

constexpr int32_t kDefaultCompletionMaxTokens = 16;  // OpenAI's default for /completions

using rapidjson::Value;

struct LocalRequest {
  engine::EngineRequest engine;
  bool stream = false;
  bool include_usage = false;
  bool chat = true;
  int n = 1;  // choices: one engine sequence each
};

std::string text_of(const Value& content) {
  if (content.IsString()) return {content.GetString(), content.GetStringLength()};
  std::string out;
  if (content.IsArray()) {  // [{"type":"text","text":"..."}]
    for (const auto& part : content.GetArray()) {
      if (!part.IsObject()) continue;
      auto t = part.FindMember("text");
      if (t != part.MemberEnd() && t->value.IsString()) out.append(t->value.GetString(), t->value.GetStringLength());
    }
  }
  return out;
}

float float_or(const Value& body, const char* key, float fallback) {
  auto it = body.FindMember(key);
  return it != body.MemberEnd() && it->value.IsNumber() ? static_cast<float>(it->value.GetDouble())
                                                        : fallback;
}

// The request has already passed openai::parse_request (types and ranges of the common fields).
std::variant<LocalRequest, openai::ApiError> to_engine_request(std::string_view path,
                                                               std::string_view body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return openai::invalid_request("The body must be a JSON object.");
  LocalRequest r;
  r.chat = path == "/chat/completions";
  r.engine.chat = r.chat;
  if (r.chat) {
    for (const auto& m : d["messages"].GetArray()) {
      auto content = m.FindMember("content");
      r.engine.messages.push_back({m["role"].GetString(),
                                   content == m.MemberEnd() ? std::string() : text_of(content->value)});
    }
  } else {
    const Value& prompt = d["prompt"];
    if (prompt.IsString()) r.engine.prompt.assign(prompt.GetString(), prompt.GetStringLength());
    else if (prompt.IsArray() && prompt.Size() == 1 && prompt[0].IsString())
      r.engine.prompt.assign(prompt[0].GetString(), prompt[0].GetStringLength());
    else
      return openai::invalid_request("Local models take one prompt string per request.", "prompt");
  }
  if (auto it = d.FindMember("n"); it != d.MemberEnd() && it->value.IsInt()) r.n = it->value.GetInt();
  engine::SamplingParams& lp = r.engine.sampling;
  if (auto it = d.FindMember("logprobs"); it != d.MemberEnd() && !it->value.IsNull()) {
    if (r.chat) {  // chat: logprobs: bool, top_logprobs: 0..20
      if (!it->value.IsBool()) return openai::invalid_request("'logprobs' must be a boolean.", "logprobs");
      lp.logprobs = it->value.GetBool();
    } else {  // completions: logprobs: N alternatives, 0..5
      if (!it->value.IsInt() || it->value.GetInt() < 0 || it->value.GetInt() > 5)
        return openai::invalid_request("'logprobs' must be an integer from 0 to 5.", "logprobs");
      lp.logprobs = true;
      lp.top_logprobs = it->value.GetInt();
    }
  }
  if (auto it = d.FindMember("top_logprobs"); r.chat && it != d.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsInt() || it->value.GetInt() < 0 || it->value.GetInt() > engine::kMaxTopLogprobs)
      return openai::invalid_request("'top_logprobs' must be an integer from 0 to 20.", "top_logprobs");
    if (!lp.logprobs)
      return openai::invalid_request("'top_logprobs' needs 'logprobs': true.", "top_logprobs");
    lp.top_logprobs = it->value.GetInt();
  }
  if (auto it = d.FindMember("stream"); it != d.MemberEnd() && it->value.IsBool()) r.stream = it->value.GetBool();
  if (auto it = d.FindMember("stream_options"); it != d.MemberEnd() && it->value.IsObject()) {
    auto u = it->value.FindMember("include_usage");
    r.include_usage = u != it->value.MemberEnd() && u->value.IsBool() && u->value.GetBool();
  }
  engine::SamplingParams& sp = r.engine.sampling;
  sp.temperature = float_or(d, "temperature", 1.0f);
  sp.top_p = float_or(d, "top_p", 1.0f);
  sp.min_p = float_or(d, "min_p", 0.0f);
  sp.presence_penalty = float_or(d, "presence_penalty", 0.0f);
  sp.frequency_penalty = float_or(d, "frequency_penalty", 0.0f);
  sp.repetition_penalty = float_or(d, "repetition_penalty", 1.0f);
  if (auto it = d.FindMember("top_k"); it != d.MemberEnd() && it->value.IsInt()) sp.top_k = it->value.GetInt();
  if (auto it = d.FindMember("seed"); it != d.MemberEnd() && it->value.IsInt64())
    sp.seed = static_cast<uint64_t>(it->value.GetInt64());
  if (auto it = d.FindMember("ignore_eos"); it != d.MemberEnd() && it->value.IsBool()) sp.ignore_eos = it->value.GetBool();
  sp.max_tokens = r.chat ? 0 : kDefaultCompletionMaxTokens;  // chat: the rest of the context
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    auto it = d.FindMember(key);
    if (it != d.MemberEnd() && it->value.IsInt()) sp.max_tokens = it->value.GetInt();
  }
  if (auto it = d.FindMember("stop"); it != d.MemberEnd()) {
    if (it->value.IsString()) sp.stop.emplace_back(it->value.GetString(), it->value.GetStringLength());
    if (it->value.IsArray())
      for (const auto& s : it->value.GetArray()) sp.stop.emplace_back(s.GetString(), s.GetStringLength());
  }
  return r;
}

std::string quoted(std::string_view s) {
  std::string out;
  log::append_json_string(out, s);
  return out;
}

std::string bytes_json(std::string_view s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out.push_back(',');
    out += std::to_string(static_cast<unsigned char>(s[i]));
  }
  out.push_back(']');
  return out;
}

// Chat shape: {"content":[{"token","logprob","bytes","top_logprobs":[...]}]}; null when the
// request did not ask or the piece has no tokens.
std::string chat_logprobs(const std::vector<engine::TokenLogprobs>& tokens, bool asked) {
  if (!asked || tokens.empty()) return "null";
  std::string out = R"({"content":[)";
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    if (i) out.push_back(',');
    out += fmt::format(R"({{"token":{},"logprob":{},"bytes":{},"top_logprobs":[)", quoted(t.token),
                       t.logprob, bytes_json(t.token));
    for (size_t k = 0; k < t.top.size(); ++k) {
      if (k) out.push_back(',');
      out += fmt::format(R"({{"token":{},"logprob":{},"bytes":{}}})", quoted(t.top[k].token),
                         t.top[k].logprob, bytes_json(t.top[k].token));
    }
    out += "]}";
  }
  return out + "]}";
}

// Legacy completions shape: tokens, token_logprobs, top_logprobs (token -> logprob maps) and
// text_offset (where each token starts in the generated text; `offset` carries across chunks).
std::string completion_logprobs(const std::vector<engine::TokenLogprobs>& tokens, bool asked,
                                size_t& offset) {
  if (!asked || tokens.empty()) return "null";
  std::string toks, lps, tops, offsets;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    const char* sep = i ? "," : "";
    toks += sep + quoted(t.token);
    lps += sep + fmt::format("{}", t.logprob);
    offsets += sep + std::to_string(offset);
    offset += t.token.size();
    tops += sep;
    tops += "{";
    for (size_t k = 0; k < t.top.size(); ++k)
      tops += (k ? "," : "") + quoted(t.top[k].token) + ":" + fmt::format("{}", t.top[k].logprob);
    tops += "}";
  }
  return fmt::format(R"({{"tokens":[{}],"token_logprobs":[{}],"top_logprobs":[{}],"text_offset":[{}]}})",
                     toks, lps, tops, offsets);
}

const char* finish_name(engine::FinishReason r) {
  return r == engine::FinishReason::Length ? "length" : "stop";
}

// OpenAI response shapes for one choice.
struct Shapes {
  bool chat;
  std::string id;
  int64_t created;
  std::string model;  // quoted

  std::string chunk(std::string_view text, bool first, const char* finish,
                    const std::string& logprobs = "null", int index = 0) const {
    std::string fin = finish ? fmt::format("\"{}\"", finish) : "null";
    if (chat) {
      std::string delta = first ? fmt::format(R"({{"role":"assistant","content":{}}})", quoted(text))
                          : finish && text.empty() ? std::string("{}")
                                                   : fmt::format(R"({{"content":{}}})", quoted(text));
      return fmt::format(
          "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},"
          "\"choices\":[{{\"index\":{},\"delta\":{},\"logprobs\":{},\"finish_reason\":{}}}]}}\n\n",
          id, created, model, index, delta, logprobs, fin);
    }
    return fmt::format(
        "data: {{\"id\":\"{}\",\"object\":\"text_completion\",\"created\":{},\"model\":{},"
        "\"choices\":[{{\"index\":{},\"text\":{},\"logprobs\":{},\"finish_reason\":{}}}]}}\n\n",
        id, created, model, index, quoted(text), logprobs, fin);
  }
  static std::string usage(const engine::EngineOutput& o) {
    // cached_tokens: prompt tokens whose K/V came from the prefix cache, as OpenAI reports them.
    return fmt::format(
        R"({{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{},)"
        R"("prompt_tokens_details":{{"cached_tokens":{}}}}})",
        o.prompt_tokens, o.completion_tokens, o.prompt_tokens + o.completion_tokens,
        o.cached_tokens);
  }
  std::string usage_chunk(const engine::EngineOutput& o) const {
    return fmt::format("data: {{\"id\":\"{}\",\"object\":\"{}\",\"created\":{},\"model\":{},"
                       "\"choices\":[],\"usage\":{}}}\n\n",
                       id, chat ? "chat.completion.chunk" : "text_completion", created, model,
                       usage(o));
  }
  std::string choice(const engine::EngineOutput& o, const std::string& logprobs, int index) const {
    if (chat) {
      return fmt::format(
          R"({{"index":{},"message":{{"role":"assistant","content":{}}},"logprobs":{},"finish_reason":"{}"}})",
          index, quoted(o.text), logprobs, finish_name(o.finish_reason));
    }
    return fmt::format(R"({{"index":{},"text":{},"logprobs":{},"finish_reason":"{}"}})", index,
                       quoted(o.text), logprobs, finish_name(o.finish_reason));
  }
  std::string whole(const std::string& choices, const engine::EngineOutput& totals) const {
    return fmt::format(R"({{"id":"{}","object":"{}","created":{},"model":{},"choices":[{}],"usage":{}}})",
                       id, chat ? "chat.completion" : "text_completion", created, model, choices,
                       usage(totals));
  }
};

std::atomic<uint64_t> g_next_id{1};

struct EmbeddingRequest {
  std::vector<std::string> inputs;
  bool base64 = false;
};

std::variant<EmbeddingRequest, openai::ApiError> to_embedding_request(std::string_view body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return openai::invalid_request("The body must be a JSON object.");
  EmbeddingRequest r;
  const Value& input = d["input"];
  if (input.IsString()) {
    r.inputs.emplace_back(input.GetString(), input.GetStringLength());
  } else {
    for (const auto& e : input.GetArray()) {
      if (!e.IsString())
        return openai::invalid_request("Local models embed strings; token-id inputs are not supported.", "input");
      r.inputs.emplace_back(e.GetString(), e.GetStringLength());
    }
  }
  if (auto it = d.FindMember("encoding_format"); it != d.MemberEnd() && !it->value.IsNull()) {
    std::string_view f = it->value.IsString() ? std::string_view(it->value.GetString()) : "";
    if (f != "float" && f != "base64")
      return openai::invalid_request("'encoding_format' must be 'float' or 'base64'.", "encoding_format");
    r.base64 = f == "base64";
  }
  return r;
}

// Little-endian float32 bytes in base64, as OpenAI's encoding_format "base64" sends them.
std::string base64_floats(const std::vector<float>& v) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
  const size_t n = v.size() * sizeof(float);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t chunk = uint32_t{bytes[i]} << 16;
    if (i + 1 < n) chunk |= uint32_t{bytes[i + 1]} << 8;
    if (i + 2 < n) chunk |= bytes[i + 2];
    out.push_back(kAlphabet[(chunk >> 18) & 63]);
    out.push_back(kAlphabet[(chunk >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(chunk >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[chunk & 63] : '=');
  }
  return out;
}

using Channels = std::vector<std::shared_ptr<engine::RequestChannel>>;

// The engine sequences of one request and the timer its coroutine sleeps on between outputs.
struct Started {
  Channels channels;
  std::shared_ptr<asio::steady_timer> wake;  // never expires; the step thread posts its cancel
};

// Submits every request (the engine batches them), points each channel's wake-up at one timer,
// and arms `cancel` to abort them all (clear it before `Started` goes away). If the engine
// refuses one, those already queued are aborted, `response` carries the refusal (503 for a full
// queue, else 400 naming `param`) and the result is null.
std::shared_ptr<Started> start_all(engine::Engine& engine,
                                   std::vector<engine::EngineRequest> requests,
                                   const asio::any_io_executor& executor, const char* param,
                                   http::Cancellation& cancel, http::ClientResponse& response) {
  auto started = std::make_shared<Started>();
  started->wake = std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
  for (auto& request : requests) {
    auto submitted = engine.submit(std::move(request));
    if (!submitted) {
      for (auto& c : started->channels) c->abort();
      const std::string& msg = submitted.error().message;
      openai::ApiError e = msg.starts_with("queue full")
                               ? openai::service_unavailable(msg)
                               : openai::invalid_request(msg, param ? param : "");
      response.status = e.status;
      response.error_body = e.to_json();
      return nullptr;
    }
    (*submitted)->set_notify([executor, wake = started->wake] {
      asio::post(executor, [wake] { wake->cancel(); });
    });
    started->channels.push_back(std::move(*submitted));
  }
  cancel.set_handler([started] {
    for (auto& c : started->channels) c->abort();
    started->wake->cancel();
  });
  return started;
}

class LocalBackend final : public Backend {
 public:
  LocalBackend(std::shared_ptr<engine::Engine> engine, std::string served_name)
      : engine_(std::move(engine)), served_name_(std::move(served_name)) {}

  asio::awaitable<http::ClientResponse> call(const http::ClientRequest& request,
                                             http::BodySink& sink,
                                             http::Cancellation& cancel) override {
    if (request.path == "/embeddings") {
      http::ClientResponse embedded = co_await embed(request, sink, cancel);
      co_return embedded;
    }
    http::ClientResponse response;
    auto parsed = to_engine_request(request.path, request.body);
    if (auto* err = std::get_if<openai::ApiError>(&parsed)) {
      response.status = err->status;
      response.error_body = err->to_json();
      co_return response;
    }
    LocalRequest& r = std::get<LocalRequest>(parsed);
    const bool want_logprobs = r.engine.sampling.logprobs;
    const int n = std::max(1, r.n);

    // One engine sequence per choice (with a seed, choice i samples with seed + i). The step
    // thread wakes this coroutine by posting a cancel of a timer that never expires.
    std::vector<engine::EngineRequest> requests;
    for (int i = 0; i < n; ++i) {
      requests.push_back(r.engine);
      auto& seed = requests.back().sampling.seed;
      if (seed && i > 0) seed = *seed + static_cast<uint64_t>(i);
    }
    auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<Started> started =
        start_all(*engine_, std::move(requests), executor, nullptr, cancel, response);
    if (!started) co_return response;
    Channels& channels = started->channels;
    std::shared_ptr<asio::steady_timer> wake = started->wake;

    Shapes shapes{.chat = r.chat,
                  .id = fmt::format("{}-{}", r.chat ? "chatcmpl" : "cmpl", g_next_id.fetch_add(1)),
                  .created = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count(),
                  .model = quoted(served_name_)};
    struct Choice {
      engine::EngineOutput whole;
      bool first = true;
      bool done = false;
      size_t text_offset = 0;  // completions logprobs
    };
    std::vector<Choice> choices(static_cast<size_t>(n));
    engine::EngineOutput out;
    std::string piece;
    response.status = 200;
    response.content_type = r.stream ? "text/event-stream" : "application/json";
    if (r.stream) {
      bool accepted = co_await sink.on_headers(response);
      if (!accepted) response.failure = http::ClientFailure::Cancelled;
    }
    int remaining = n;
    while (remaining > 0 && response.failure == http::ClientFailure::None) {
      bool any = false;
      piece.clear();
      for (int i = 0; i < n && response.failure == http::ClientFailure::None; ++i) {
        Choice& c = choices[static_cast<size_t>(i)];
        if (c.done) continue;
        out = engine::EngineOutput{};
        if (!channels[static_cast<size_t>(i)]->drain(out)) continue;
        any = true;
        if (!out.error.empty()) {
          response.failure = http::ClientFailure::Closed;
          response.failure_message = out.error;
          break;
        }
        c.whole.text.append(out.text);
        for (auto& t : out.logprobs) c.whole.logprobs.push_back(t);
        c.whole.finish_reason = out.finish_reason;
        c.whole.prompt_tokens = out.prompt_tokens;
        c.whole.completion_tokens = out.completion_tokens;
        c.whole.cached_tokens = out.cached_tokens;
        if (r.stream) {
          if (c.first && r.chat) piece += shapes.chunk("", true, nullptr, "null", i);
          c.first = false;
          std::string lp = r.chat ? chat_logprobs(out.logprobs, want_logprobs)
                                  : completion_logprobs(out.logprobs, want_logprobs, c.text_offset);
          if (!out.text.empty() || lp != "null") piece += shapes.chunk(out.text, false, nullptr, lp, i);
          if (out.finished) piece += shapes.chunk("", false, finish_name(out.finish_reason), "null", i);
        }
        if (out.finished) {
          c.done = true;
          --remaining;
        }
      }
      if (response.failure != http::ClientFailure::None) break;
      if (r.stream && remaining == 0) {
        if (r.include_usage) piece += shapes.usage_chunk(totals(choices));
        piece += "data: [DONE]\n\n";
      }
      if (!piece.empty()) {
        response.body_started = true;
        bool accepted = co_await sink.on_body(piece);
        if (!accepted) response.failure = http::ClientFailure::Cancelled;
      }
      if (!any && remaining > 0) {
        if (cancel.cancelled()) break;
        boost::system::error_code ec;
        co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
    cancel.clear_handler();
    if (remaining > 0)
      for (auto& c : channels) c->abort();  // failed or cancelled: free the other choices
    if (cancel.cancelled() && response.failure == http::ClientFailure::None) {
      response.failure = http::ClientFailure::Cancelled;
      response.failure_message = "cancelled";
    }
    if (!r.stream && response.failure == http::ClientFailure::None) {
      bool accepted = co_await sink.on_headers(response);
      if (accepted) {
        std::string all;
        for (int i = 0; i < n; ++i) {
          const Choice& c = choices[static_cast<size_t>(i)];
          size_t offset = 0;
          std::string lp = r.chat ? chat_logprobs(c.whole.logprobs, want_logprobs)
                                  : completion_logprobs(c.whole.logprobs, want_logprobs, offset);
          if (i) all.push_back(',');
          all += shapes.choice(c.whole, lp, i);
        }
        piece = shapes.whole(all, totals(choices));
        response.body_started = true;
        co_await sink.on_body(piece);
      }
    }
    co_return response;
  }

  // Usage of a request: its prompt once, the completions of all choices.
  template <typename Choices>
  static engine::EngineOutput totals(const Choices& choices) {
    engine::EngineOutput t;
    t.prompt_tokens = choices.front().whole.prompt_tokens;
    t.cached_tokens = choices.front().whole.cached_tokens;
    for (const auto& c : choices) t.completion_tokens += c.whole.completion_tokens;
    return t;
  }

  asio::awaitable<std::string> probe(std::chrono::milliseconds timeout) override {
    (void)timeout;
    co_return std::string();  // in process: alive while the process is
  }

  engine::Engine* local_engine() override { return engine_.get(); }

 private:
  // Every input is submitted at once (the engine batches them), then collected in order.
  asio::awaitable<http::ClientResponse> embed(const http::ClientRequest& request,
                                              http::BodySink& sink, http::Cancellation& cancel) {
    http::ClientResponse response;
    auto parsed = to_embedding_request(request.body);
    if (auto* err = std::get_if<openai::ApiError>(&parsed)) {
      response.status = err->status;
      response.error_body = err->to_json();
      co_return response;
    }
    EmbeddingRequest& r = std::get<EmbeddingRequest>(parsed);
    std::vector<engine::EngineRequest> requests;
    for (auto& input : r.inputs)
      requests.push_back({.chat = false, .prompt = std::move(input), .embed = true});
    auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<Started> started =
        start_all(*engine_, std::move(requests), executor, "input", cancel, response);
    if (!started) co_return response;
    Channels& channels = started->channels;
    std::shared_ptr<asio::steady_timer> wake = started->wake;
    std::string data;
    int64_t prompt_tokens = 0;
    engine::EngineOutput out;
    for (size_t i = 0; i < channels.size(); ++i) {
      out = engine::EngineOutput{};
      while (!out.finished && !cancel.cancelled()) {
        bool got = channels[i]->drain(out);
        if (!got) {
          boost::system::error_code ec;
          co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
      }
      if (cancel.cancelled()) break;
      if (!out.error.empty()) {
        for (auto& c : channels) c->abort();
        cancel.clear_handler();
        response.failure = http::ClientFailure::Closed;
        response.failure_message = out.error;
        co_return response;
      }
      prompt_tokens += out.prompt_tokens;
      if (i) data.push_back(',');
      data += fmt::format(R"({{"object":"embedding","index":{},"embedding":)", i);
      if (r.base64) data += "\"" + base64_floats(out.embedding) + "\"";
      else data += fmt::format("[{}]", fmt::join(out.embedding, ","));
      data.push_back('}');
    }
    cancel.clear_handler();
    if (cancel.cancelled()) {
      response.failure = http::ClientFailure::Cancelled;
      response.failure_message = "cancelled";
      co_return response;
    }
    response.status = 200;
    response.content_type = "application/json";
    bool accepted = co_await sink.on_headers(response);
    if (accepted) {
      std::string body = fmt::format(
          R"({{"object":"list","data":[{}],"model":{},"usage":{{"prompt_tokens":{},"total_tokens":{}}}}})",
          data, quoted(served_name_), prompt_tokens, prompt_tokens);
      response.body_started = true;
      co_await sink.on_body(body);
    }
    co_return response;
  }

  std::shared_ptr<engine::Engine> engine_;
  std::string served_name_;
};

// Engines are shared by path and settings, so a reload does not load the model again.
Result<std::shared_ptr<engine::Engine>> shared_engine(const DeploymentConfig& d,
                                                      metrics::Registry* registry) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<engine::Engine>> engines;
  const LocalEngineParams& p = d.local;
  std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", d.upstream_model, p.num_threads,
                                p.max_model_len, p.max_num_seqs, p.max_num_batched_tokens,
                                p.max_num_queued_requests, p.kv_cache_memory.to_string(),
                                p.block_size, p.kv_cache_dtype, p.enable_prefix_caching);
  std::lock_guard lock(mu);
  if (auto it = engines.find(key); it != engines.end()) {
    if (auto e = it->second.lock()) return e;
  }
  engine::EngineOptions o{.model_path = d.upstream_model};
  o.registry = registry;
  o.served_model_name = d.model_name;
  if (p.num_threads > 0) o.num_threads = p.num_threads;
  if (p.max_model_len > 0) o.max_model_len = p.max_model_len;
  if (p.max_num_seqs > 0) o.max_num_seqs = p.max_num_seqs;
  if (p.max_num_batched_tokens > 0) o.max_num_batched_tokens = p.max_num_batched_tokens;
  if (p.max_num_queued_requests > 0) o.max_num_queued_requests = p.max_num_queued_requests;
  o.kv_cache_bytes = p.kv_cache_memory.bytes;
  o.kv_cache_fraction = p.kv_cache_memory.fraction;
  if (p.block_size > 0) o.block_size = p.block_size;
  if (!p.kv_cache_dtype.empty()) o.kv_cache_dtype = p.kv_cache_dtype;
  o.enable_prefix_caching = p.enable_prefix_caching;
  auto started = engine::Engine::start(o);
  if (!started) return started.error();
  std::shared_ptr<engine::Engine> e = std::move(*started);
  const engine::EngineInfo& info = e->info();
  log::info("engine", "model loaded",
            {{"model_name", d.model_name},
             {"path", d.upstream_model},
             {"architecture", info.architecture},
             {"vocab_size", info.vocab_size},
             {"max_model_len", info.max_model_len},
             {"kv_blocks", info.num_kv_blocks},
             {"max_concurrency_at_max_model_len", info.max_concurrency},
             {"block_size", info.block_size},
             {"kv_cache_dtype", info.kv_cache_dtype},
             {"enable_prefix_caching", info.enable_prefix_caching},
             {"chat_template", info.chat_template}});
  if (info.chat_template_fallback) {
    log::warn("engine", "the model has no chat template ondol recognises; chat requests use the "
                        "plain fallback (System:/User:/Assistant: lines)",
              {{"model_name", d.model_name}});
  }
  engines[key] = e;
  return e;
}

}  // namespace

Result<std::unique_ptr<Backend>> make_local_backend(const DeploymentConfig& config,
                                                    metrics::Registry* registry) {
  auto e = shared_engine(config, registry);
  if (!e) return make_error(fmt::format("deployment '{}': {}", config.model_name, e.error().message));
  return std::unique_ptr<Backend>(new LocalBackend(std::move(*e), config.model_name));
}

}  // namespace ondol::gateway
