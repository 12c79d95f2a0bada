#include "bench/request.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace ondol::bench {

namespace {

constexpr size_t kErrorExcerptBytes = 200;
constexpr size_t kJsonValueBufferBytes = 8192;
constexpr size_t kJsonParseBufferBytes = 2048;

using ChunkDocument =
    rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                               rapidjson::MemoryPoolAllocator<>>;

std::string_view str(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

const rapidjson::Value* member(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string_view string_member(const rapidjson::Value& obj, const char* key) {
  const auto* v = member(obj, key);
  return v && v->IsString() ? str(*v) : std::string_view();
}

std::string error_message(const rapidjson::Value& error) {
  if (error.IsString()) return std::string(str(error));
  std::string_view message = string_member(error, "message");
  return message.empty() ? std::string("error without a message") : std::string(message);
}

}  // namespace

std::string request_body(const BodyParams& p, std::string_view prompt, int64_t max_tokens) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("model");
  w.String(p.model.data(), static_cast<rapidjson::SizeType>(p.model.size()));
  if (p.api == ApiKind::Chat) {
    w.Key("messages");
    w.StartArray();
    w.StartObject();
    w.Key("role");
    w.String("user");
    w.Key("content");
    w.String(prompt.data(), static_cast<rapidjson::SizeType>(prompt.size()));
    w.EndObject();
    w.EndArray();
    w.Key("max_completion_tokens");
  } else {
    w.Key("prompt");
    w.String(prompt.data(), static_cast<rapidjson::SizeType>(prompt.size()));
    w.Key("max_tokens");
  }
  w.Int64(max_tokens);
  w.Key("temperature");
  w.Double(p.temperature);
  if (p.seed) {
    w.Key("seed");
    w.Int64(*p.seed);
  }
  if (p.ignore_eos) {
    w.Key("ignore_eos");
    w.Bool(true);
  }
  w.Key("stream");
  w.Bool(p.stream);
  if (p.stream) {
    w.Key("stream_options");
    w.StartObject();
    w.Key("include_usage");
    w.Bool(true);
    w.EndObject();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool ResponseReader::feed(std::string_view piece, double now_s) {
  if (!streaming_) {
    whole_body_.append(piece);
    return true;
  }
  if (!sse_.feed(piece, events_)) {
    error_ = "an SSE event over the size limit";
    return false;
  }
  for (const auto& e : events_) on_event(e, now_s);
  return true;
}

void ResponseReader::on_event(std::string_view payload, double now_s) {
  if (payload == "[DONE]") {
    done_ = true;
    return;
  }
  on_json(payload, now_s);
}

void ResponseReader::on_json(std::string_view json, double now_s) {
  // A chunk's document lives in buffers on the stack: a default Document would malloc a 64 KiB
  // pool per chunk, which at tens of thousands of chunks per second is most of the reader's time.
  char value_buffer[kJsonValueBufferBytes];
  char parse_buffer[kJsonParseBufferBytes];
  rapidjson::MemoryPoolAllocator<> value_allocator(value_buffer, sizeof(value_buffer));
  rapidjson::MemoryPoolAllocator<> parse_allocator(parse_buffer, sizeof(parse_buffer));
  ChunkDocument d(&value_allocator, sizeof(parse_buffer), &parse_allocator);
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    if (error_.empty()) error_ = "a response chunk is not JSON";
    return;
  }
  if (const auto* e = member(d, "error"); e && !e->IsNull()) {
    if (error_.empty()) error_ = "error in stream: " + error_message(*e);
    return;
  }
  if (const auto* usage = member(d, "usage"); usage && usage->IsObject()) {
    if (const auto* v = member(*usage, "prompt_tokens"); v && v->IsInt64())
      usage_prompt_tokens_ = v->GetInt64();
    if (const auto* v = member(*usage, "completion_tokens"); v && v->IsInt64())
      usage_completion_tokens_ = v->GetInt64();
  }
  const auto* choices = member(d, "choices");
  if (!choices || !choices->IsArray() || choices->Empty()) return;
  const auto& choice = (*choices)[0];
  std::string_view content;
  if (api_ == ApiKind::Chat) {
    const char* holder = streaming_ ? "delta" : "message";
    if (const auto* delta = member(choice, holder)) {
      content = string_member(*delta, "content");
      if (content.empty()) content = string_member(*delta, "reasoning_content");
    }
  } else {
    content = string_member(choice, "text");
  }
  if (content.empty()) return;
  text_.append(content);
  ++num_content_chunks_;
  if (!first_content_seen_) {
    first_content_seen_ = true;
    ttft_s_ = now_s;
  } else {
    itl_s_.push_back(now_s - last_content_s_);
  }
  last_content_s_ = now_s;
}

void ResponseReader::finish(double now_s, int64_t estimated_prompt_len, RequestOutput& out) {
  if (!streaming_) {
    on_json(whole_body_, now_s);
    done_ = true;
  }
  out.latency_s = now_s;
  out.error = error_;
  if (out.error.empty() && streaming_ && !done_) out.error = "the stream ended without [DONE]";
  out.success = out.error.empty();
  // A response with no content at all (zero tokens asked, or an immediate stop) has its first
  // token time at its end, so that it still counts in TTFT as vLLM counts it.
  out.ttft_s = first_content_seen_ ? ttft_s_ : now_s;
  out.itl_s = std::move(itl_s_);
  out.prompt_tokens = usage_prompt_tokens_.value_or(estimated_prompt_len);
  out.output_tokens = usage_completion_tokens_.value_or(num_content_chunks_);
  out.generated_text = std::move(text_);
}

std::string describe_http_error(int status, std::string_view body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (!d.HasParseError() && d.IsObject()) {
    if (const auto* e = member(d, "error"); e && !e->IsNull())
      return fmt::format("HTTP {}: {}", status, error_message(*e));
  }
  std::string excerpt(body.substr(0, kErrorExcerptBytes));
  for (char& c : excerpt)
    if (c == '\n' || c == '\r') c = ' ';
  return excerpt.empty() ? fmt::format("HTTP {}", status)
                         : fmt::format("HTTP {}: {}", status, excerpt);
}

}  // namespace ondol::bench
