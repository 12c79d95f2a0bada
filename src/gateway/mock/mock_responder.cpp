#include "gateway/mock/mock_responder.h"

#include <utility>

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <array>
#include <chrono>

#include "common/log.h"
#include "openai/error.h"

namespace ondol::gateway::mock {

namespace asio = boost::asio;

namespace {

constexpr std::array<std::string_view, 9> kWords = {"the", "quick", "brown", "fox", "jumps",
                                                     "over", "the", "lazy", "dog"};
constexpr int kEmbeddingDims = 8;
constexpr int64_t kMaxMockTokens = 1 << 20;

std::atomic<uint64_t> g_next_id{1};

struct Plan {
  std::string kind;  // "chat", "text", "embeddings"
  std::string model;
  bool stream = false;
  bool include_usage = false;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  bool length_limited = false;
  int64_t num_inputs = 1;
  double latency_ms = 0;
  double chunk_delay_ms = 0;
  int tokens_per_chunk = 1;
  int fail_status = 0;
  int64_t crash_after_chunks = -1;
};

int64_t count_words(std::string_view s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

int64_t count_prompt(const rapidjson::Value& v) {
  if (v.IsString()) return count_words({v.GetString(), v.GetStringLength()});
  int64_t n = 0;
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) n += e.IsInt64() ? 1 : count_prompt(e);
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      std::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (key == "content" || key == "text") n += count_prompt(m.value);
    }
  }
  return n;
}

double number_or(const rapidjson::Value& obj, const char* key, double fallback) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : fallback;
}

std::variant<Plan, openai::ApiError> make_plan(const MockParams& d, std::string_view path,
                                               std::string_view served_model,
                                               std::string_view body) {
  Plan p;
  if (path == "/chat/completions") p.kind = "chat";
  else if (path == "/completions") p.kind = "text";
  else if (path == "/embeddings") p.kind = "embeddings";
  else return openai::not_found_path(path);
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject())
    return openai::invalid_request("The request body must be a JSON object.");
  auto model = doc.FindMember("model");
  if (model == doc.MemberEnd() || !model->value.IsString())
    return openai::invalid_request("'model' is a required property.", "model");
  p.model = served_model.empty() ? std::string(model->value.GetString()) : std::string(served_model);
  if (auto s = doc.FindMember("stream"); s != doc.MemberEnd() && s->value.IsBool())
    p.stream = s->value.GetBool();
  if (auto so = doc.FindMember("stream_options"); so != doc.MemberEnd() && so->value.IsObject()) {
    auto u = so->value.FindMember("include_usage");
    p.include_usage = u != so->value.MemberEnd() && u->value.IsBool() && u->value.GetBool();
  }
  const char* input_key = p.kind == "chat" ? "messages" : p.kind == "text" ? "prompt" : "input";
  auto input = doc.FindMember(input_key);
  if (input == doc.MemberEnd())
    return openai::invalid_request(fmt::format("'{}' is a required property.", input_key),
                                   input_key);
  p.prompt_tokens = count_prompt(input->value);
  if (p.kind == "embeddings" && input->value.IsArray()) p.num_inputs = input->value.Size();
  p.output_tokens = d.output_tokens;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    auto it = doc.FindMember(key);
    if (it != doc.MemberEnd() && it->value.IsInt64()) {
      p.output_tokens = std::clamp<int64_t>(it->value.GetInt64(), 0, kMaxMockTokens);
      p.length_limited = true;
    }
  }
  p.latency_ms = d.response_latency_ms;
  p.chunk_delay_ms = d.chunk_delay_ms;
  p.tokens_per_chunk = std::max(1, d.tokens_per_chunk);
  if (auto m = doc.FindMember("mock"); m != doc.MemberEnd() && m->value.IsObject()) {
    const auto& o = m->value;
    p.latency_ms = number_or(o, "latency_ms", p.latency_ms);
    p.chunk_delay_ms = number_or(o, "chunk_delay_ms", p.chunk_delay_ms);
    p.tokens_per_chunk = std::max(1, static_cast<int>(number_or(o, "tokens_per_chunk",
                                                                p.tokens_per_chunk)));
    p.fail_status = static_cast<int>(number_or(o, "fail_status", 0));
    p.crash_after_chunks = static_cast<int64_t>(number_or(o, "crash_after_chunks", -1));
  }
  return p;
}

// Sleeps unless cancelled first. Returns false when cancelled.
asio::awaitable<bool> sleep_ms(double ms, http::Cancellation& cancel) {
  if (cancel.cancelled()) co_return false;
  if (ms <= 0) co_return true;
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
  cancel.set_handler([&timer] { timer.cancel(); });
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  cancel.clear_handler();
  co_return !cancel.cancelled();
}

void append_tokens(std::string& out, int64_t first, int64_t count) {
  for (int64_t i = first; i < first + count; ++i) {
    out.append(kWords[static_cast<size_t>(i) % kWords.size()]);
    out.push_back(' ');
  }
}

std::string usage_json(const Plan& p, int64_t completion) {
  return fmt::format(R"({{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}})",
                     p.prompt_tokens, completion, p.prompt_tokens + completion);
}

std::string whole_response(const Plan& p, const std::string& id, int64_t created) {
  std::string text;
  append_tokens(text, 0, p.output_tokens);
  std::string quoted;
  log::append_json_string(quoted, text);
  std::string model;
  log::append_json_string(model, p.model);
  const char* finish = p.length_limited ? "length" : "stop";
  if (p.kind == "chat") {
    return fmt::format(
        R"({{"id":"{}","object":"chat.completion","created":{},"model":{},"choices":[{{"index":0,"message":{{"role":"assistant","content":{}}},"logprobs":null,"finish_reason":"{}"}}],"usage":{}}})",
        id, created, model, quoted, finish, usage_json(p, p.output_tokens));
  }
  if (p.kind == "text") {
    return fmt::format(
        R"({{"id":"{}","object":"text_completion","created":{},"model":{},"choices":[{{"index":0,"text":{},"logprobs":null,"finish_reason":"{}"}}],"usage":{}}})",
        id, created, model, quoted, finish, usage_json(p, p.output_tokens));
  }
  std::string data;
  for (int64_t i = 0; i < p.num_inputs; ++i) {
    if (i) data.push_back(',');
    data.append(fmt::format(R"({{"object":"embedding","index":{},"embedding":[)", i));
    for (int k = 0; k < kEmbeddingDims; ++k) {
      if (k) data.push_back(',');
      data.append(fmt::format("{:.6f}", ((i * 31 + k * 7) % 17) / 17.0 - 0.5));
    }
    data.append("]}");
  }
  return fmt::format(
      R"({{"object":"list","data":[{}],"model":{},"usage":{{"prompt_tokens":{},"total_tokens":{}}}}})",
      data, model, p.prompt_tokens, p.prompt_tokens);
}

std::string chunk_event(const Plan& p, const std::string& id, int64_t created,
                        std::string_view content_json, const char* finish_reason,
                        bool first) {
  std::string model;
  log::append_json_string(model, p.model);
  std::string finish = finish_reason ? fmt::format("\"{}\"", finish_reason) : "null";
  std::string payload;
  if (p.kind == "chat") {
    std::string delta = first ? fmt::format(R"({{"role":"assistant","content":{}}})", content_json)
                        : finish_reason ? std::string("{}")
                                        : fmt::format(R"({{"content":{}}})", content_json);
    payload = fmt::format(
        R"({{"id":"{}","object":"chat.completion.chunk","created":{},"model":{},"choices":[{{"index":0,"delta":{},"logprobs":null,"finish_reason":{}}}]}})",
        id, created, model, delta, finish);
  } else {
    payload = fmt::format(
        R"({{"id":"{}","object":"text_completion","created":{},"model":{},"choices":[{{"index":0,"text":{},"logprobs":null,"finish_reason":{}}}]}})",
        id, created, model, content_json, finish);
  }
  return "data: " + payload + "\n\n";
}

std::string usage_event(const Plan& p, const std::string& id, int64_t created) {
  std::string model;
  log::append_json_string(model, p.model);
  const char* object = p.kind == "chat" ? "chat.completion.chunk" : "text_completion";
  return fmt::format(
      "data: {{\"id\":\"{}\",\"object\":\"{}\",\"created\":{},\"model\":{},\"choices\":[],"
      "\"usage\":{}}}\n\n",
      id, object, created, model, usage_json(p, p.output_tokens));
}

struct ActiveGuard {
  MockStats& s;
  explicit ActiveGuard(MockStats& stats) : s(stats) { s.active.fetch_add(1); }
  ~ActiveGuard() { s.active.fetch_sub(1); }
};

}  // namespace

std::string MockStats::to_json() const {
  return fmt::format(
      R"({{"requests":{},"streams_started":{},"streams_completed":{},"streams_cancelled":{},"active":{}}})",
      requests.load(), streams_started.load(), streams_completed.load(), streams_cancelled.load(),
      active.load());
}

namespace {

// Every co_await below stands alone in its statement, with named arguments: GCC 12 mis-sizes
// coroutine frames when awaits sit inside conditions or hold temporaries.
asio::awaitable<void> send_whole(MockOutput& out, int status, std::string_view content_type,
                                 std::string body) {
  bool open = co_await out.begin(status, content_type, false);
  if (open) {
    bool written = co_await out.write(body);
    (void)written;
  }
  co_await out.finish();
}

// Returns true when the whole stream went out; false when the receiver went away or a crash
// was injected.
asio::awaitable<bool> send_stream(const Plan& p, const std::string& id, int64_t created,
                                  MockOutput& out, http::Cancellation& cancel) {
  bool ok = co_await out.begin(200, "text/event-stream", true);
  if (!ok) co_return false;
  std::string piece;
  std::string text;
  std::string quoted;
  int64_t chunks = 0;
  if (p.kind == "chat") {  // the role chunk comes first, as OpenAI sends it
    piece = chunk_event(p, id, created, "\"\"", nullptr, true);
    ok = co_await out.write(piece);
    if (!ok) co_return false;
  }
  for (int64_t sent = 0; sent < p.output_tokens; sent += p.tokens_per_chunk) {
    if (p.crash_after_chunks >= 0 && chunks >= p.crash_after_chunks) {
      out.crash();
      co_return false;
    }
    if (chunks > 0) {
      ok = co_await sleep_ms(p.chunk_delay_ms, cancel);
      if (!ok) co_return false;
    }
    text.clear();
    quoted.clear();
    append_tokens(text, sent, std::min<int64_t>(p.tokens_per_chunk, p.output_tokens - sent));
    log::append_json_string(quoted, text);
    piece = chunk_event(p, id, created, quoted, nullptr, false);
    ok = co_await out.write(piece);
    if (!ok) co_return false;
    ++chunks;
  }
  if (p.crash_after_chunks >= 0 && chunks >= p.crash_after_chunks) {
    out.crash();
    co_return false;
  }
  piece = chunk_event(p, id, created, "\"\"", p.length_limited ? "length" : "stop", false);
  if (p.include_usage) piece += usage_event(p, id, created);
  piece += "data: [DONE]\n\n";
  ok = co_await out.write(piece);
  if (!ok) co_return false;
  co_await out.finish();
  co_return true;
}

}  // namespace

asio::awaitable<void> respond(const MockParams& defaults, std::string_view path,
                              std::string_view served_model, std::string_view body,
                              MockOutput& out, http::Cancellation& cancel, MockStats& stats) {
  stats.requests.fetch_add(1, std::memory_order_relaxed);
  ActiveGuard active(stats);
  auto planned = make_plan(defaults, path, served_model, body);
  if (auto* err = std::get_if<openai::ApiError>(&planned)) {
    std::string error_json = err->to_json();
    co_await send_whole(out, err->status, "application/json", std::move(error_json));
    co_return;
  }
  const Plan& p = std::get<Plan>(planned);
  bool waited = co_await sleep_ms(p.latency_ms, cancel);
  if (!waited) co_return;
  if (p.fail_status >= 400) {
    openai::ApiError e{p.fail_status, fmt::format("mock failure with status {}", p.fail_status),
                       p.fail_status >= 500 ? "server_error" : "invalid_request_error", {}, {}};
    std::string error_json = e.to_json();
    co_await send_whole(out, p.fail_status, "application/json", std::move(error_json));
    co_return;
  }
  const char* prefix = p.kind == "chat" ? "chatcmpl" : p.kind == "text" ? "cmpl" : "emb";
  std::string id =
      fmt::format("{}-mock-{}", prefix, g_next_id.fetch_add(1, std::memory_order_relaxed));
  int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  if (!p.stream || p.kind == "embeddings") {
    std::string whole = whole_response(p, id, created);
    co_await send_whole(out, 200, "application/json", std::move(whole));
    co_return;
  }
  stats.streams_started.fetch_add(1, std::memory_order_relaxed);
  bool completed = co_await send_stream(p, id, created, out, cancel);
  if (completed) stats.streams_completed.fetch_add(1, std::memory_order_relaxed);
  else stats.streams_cancelled.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace ondol::gateway::mock
