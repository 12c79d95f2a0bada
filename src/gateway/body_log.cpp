#include "gateway/body_log.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <cctype>
#include <random>

#include <fmt/format.h>

namespace ondol::gateway {
namespace asio = boost::asio;
namespace {

constexpr std::string_view kRedacted = "[REDACTED]";

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

bool is_secret_field(std::string_view name) {
  static constexpr std::array<std::string_view, 14> kNames = {
      "api_key",      "apikey",        "api-key",      "x-api-key",     "authorization",
      "password",     "secret",        "client_secret", "access_token", "refresh_token",
      "token",        "key",           "master_key",   "redis_password"};
  for (std::string_view n : kNames)
    if (equals_ignore_case(name, n)) return true;
  return false;
}

// Text a user or the model wrote: message content, prompts, completions, embedding inputs.
bool is_content_field(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kNames = {"content", "prompt", "text",
                                                             "input", "reasoning_content",
                                                             "arguments"};
  for (std::string_view n : kNames)
    if (name == n) return true;
  return false;
}

bool key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// "sk-" or "Bearer " followed by 8 or more key characters: the rest becomes [REDACTED].
std::string mask_key_shapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t prefix = 0;
    if (text.compare(i, 3, "sk-") == 0) prefix = 3;
    else if (text.size() - i >= 7 && equals_ignore_case(text.substr(i, 7), "bearer ")) prefix = 7;
    if (prefix > 0 && (i == 0 || !key_char(text[i - 1]))) {
      size_t j = i + prefix;
      while (j < text.size() && key_char(text[j])) ++j;
      if (j - i - prefix >= 8) {
        out.append(text.substr(i, prefix)).append(kRedacted);
        i = j;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

void redact_value(rapidjson::Value& v, rapidjson::Document::AllocatorType& a,
                  const BodyLogOptions& o, bool content);

void redact_string(rapidjson::Value& v, rapidjson::Document::AllocatorType& a, bool secret,
                   bool content) {
  std::string replaced;
  if (secret) {
    replaced = std::string(kRedacted);
  } else if (content) {
    replaced = fmt::format("[REDACTED {} chars]", v.GetStringLength());
  } else {
    std::string_view s(v.GetString(), v.GetStringLength());
    if (s.find("sk-") == std::string_view::npos && s.find("earer ") == std::string_view::npos) return;
    replaced = mask_key_shapes(s);
  }
  v.SetString(replaced.data(), static_cast<rapidjson::SizeType>(replaced.size()), a);
}

void redact_value(rapidjson::Value& v, rapidjson::Document::AllocatorType& a,
                  const BodyLogOptions& o, bool content) {
  if (v.IsString()) {
    redact_string(v, a, false, content);
  } else if (v.IsArray()) {
    for (auto& item : v.GetArray()) redact_value(item, a, o, content);
  } else if (v.IsObject()) {
    for (auto& m : v.GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (is_secret_field(name) && m.value.IsString()) {
        redact_string(m.value, a, true, false);
      } else {
        const bool c = content || (o.redact_content && is_content_field(name));
        if (m.value.IsString()) redact_string(m.value, a, false, c);
        else redact_value(m.value, a, o, c);
      }
    }
  }
}

// One JSON document redacted and written compactly; nullopt when `text` is not JSON.
bool redact_json(std::string_view text, const BodyLogOptions& o, std::string& out) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError()) return false;
  redact_value(d, d.GetAllocator(), o, false);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  d.Accept(w);
  out.append(buf.GetString(), buf.GetSize());
  return true;
}

}  // namespace

std::string redact_body(std::string_view body, const BodyLogOptions& options) {
  std::string out;
  if (!redact_json(body, options, out)) {
    out.clear();
    // An SSE stream: each "data: {json}" line on its own; other lines only masked.
    size_t pos = 0;
    while (pos < body.size()) {
      size_t end = body.find('\n', pos);
      if (end == std::string_view::npos) end = body.size();
      std::string_view line = body.substr(pos, end - pos);
      if (line.starts_with("data: ") && line != "data: [DONE]") {
        out.append("data: ");
        if (!redact_json(line.substr(6), options, out)) out.append(mask_key_shapes(line.substr(6)));
      } else {
        out.append(mask_key_shapes(line));
      }
      if (end < body.size()) out.push_back('\n');
      pos = end + 1;
    }
  }
  if (out.size() > options.max_bytes) {
    const size_t dropped = out.size() - options.max_bytes;
    out.resize(options.max_bytes);
    out.append(fmt::format("...[{} more bytes]", dropped));
  }
  return out;
}

bool sample_body_log(double rate) {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < rate;
}

void RecordingExchange::capture(std::string_view bytes) {
  // Twice the log bound: redaction can shorten what it keeps (a long key becomes [REDACTED]).
  const size_t room = 2 * max_bytes_ > captured_.size() ? 2 * max_bytes_ - captured_.size() : 0;
  if (bytes.size() > room) truncated_ = true;
  captured_.append(bytes.substr(0, room));
}

asio::awaitable<void> RecordingExchange::respond(int status, std::string_view content_type,
                                                 std::string body) {
  capture(body);
  co_await inner_.respond(status, content_type, std::move(body));
}

asio::awaitable<bool> RecordingExchange::begin_stream(int status, std::string_view content_type) {
  bool ok = co_await inner_.begin_stream(status, content_type);
  co_return ok;
}

asio::awaitable<bool> RecordingExchange::write(std::string_view chunk) {
  capture(chunk);
  bool ok = co_await inner_.write(chunk);
  co_return ok;
}

asio::awaitable<void> RecordingExchange::end_stream() { co_await inner_.end_stream(); }

}  // namespace ondol::gateway
