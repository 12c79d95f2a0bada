#include "gateway/cache/cache_key.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <cmath>

#include "common/sha256.h"

namespace ondol::gateway::cache {
namespace {

// Top-level fields that cannot change the answer: who asks, bookkeeping, cache controls.
constexpr std::string_view kIgnoredFields[] = {
    "model",   "cache",           "user",        "metadata", "litellm_metadata", "tags",
    "timeout", "request_timeout", "num_retries", "caching",
};

bool ignored(std::string_view name) {
  return std::find(std::begin(kIgnoredFields), std::end(kIgnoredFields), name) !=
         std::end(kIgnoredFields);
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_canonical(const rapidjson::Value& v, Writer& w, bool top_level) {
  switch (v.GetType()) {
    case rapidjson::kNullType: w.Null(); break;
    case rapidjson::kFalseType: w.Bool(false); break;
    case rapidjson::kTrueType: w.Bool(true); break;
    case rapidjson::kStringType: w.String(v.GetString(), v.GetStringLength()); break;
    case rapidjson::kNumberType: {
      if (v.IsInt64()) {
        w.Int64(v.GetInt64());
      } else if (v.IsUint64()) {
        w.Uint64(v.GetUint64());
      } else {
        double d = v.GetDouble();
        // 1.0 and 1 are the same parameter value.
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0)
          w.Int64(static_cast<int64_t>(d));
        else
          w.Double(d);
      }
      break;
    }
    case rapidjson::kArrayType:
      w.StartArray();
      for (const auto& e : v.GetArray()) write_canonical(e, w, false);
      w.EndArray();
      break;
    case rapidjson::kObjectType: {
      boost::container::small_vector<const rapidjson::Value::Member*, 16> members;
      for (const auto& m : v.GetObject()) {
        std::string_view name(m.name.GetString(), m.name.GetStringLength());
        if (top_level && ignored(name)) continue;
        members.push_back(&m);
      }
      std::sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
        return std::string_view(a->name.GetString(), a->name.GetStringLength()) <
               std::string_view(b->name.GetString(), b->name.GetStringLength());
      });
      w.StartObject();
      for (const auto* m : members) {
        w.Key(m->name.GetString(), m->name.GetStringLength());
        write_canonical(m->value, w, false);
      }
      w.EndObject();
      break;
    }
  }
}

bool truthy(const rapidjson::Value& v) { return v.IsBool() && v.GetBool(); }

std::optional<double> seconds(const rapidjson::Value& v) {
  if (v.IsNumber() && v.GetDouble() >= 0) return v.GetDouble();
  return std::nullopt;
}

}  // namespace

CacheControl read_cache_control(const rapidjson::Value& body) {
  CacheControl c;
  if (!body.IsObject()) return c;
  auto it = body.FindMember("cache");
  if (it == body.MemberEnd() || !it->value.IsObject()) return c;
  for (const auto& m : it->value.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    if (name == "no-cache") c.no_cache = truthy(m.value);
    else if (name == "no-store") c.no_store = truthy(m.value);
    else if (name == "use-cache") c.use_cache = truthy(m.value);
    else if (name == "ttl") c.ttl_s = seconds(m.value);
    else if (name == "s-maxage") c.s_maxage_s = seconds(m.value);
  }
  return c;
}

bool is_deterministic(openai::Endpoint endpoint, const rapidjson::Value& body) {
  if (endpoint == openai::Endpoint::Embeddings) return true;
  if (!body.IsObject()) return false;
  auto seed = body.FindMember("seed");
  if (seed != body.MemberEnd() && seed->value.IsNumber()) return true;
  auto t = body.FindMember("temperature");
  return t != body.MemberEnd() && t->value.IsNumber() && t->value.GetDouble() == 0;
}

namespace {

// Writes the canonical form into `buffer` (cleared first).
void write_canonical_request(rapidjson::StringBuffer& buffer, openai::Endpoint endpoint,
                             std::string_view model, const rapidjson::Value& body) {
  buffer.Clear();
  Writer w(buffer);
  w.StartArray();
  std::string_view e = openai::to_string(endpoint);
  w.String(e.data(), static_cast<rapidjson::SizeType>(e.size()));
  w.String(model.data(), static_cast<rapidjson::SizeType>(model.size()));
  write_canonical(body, w, true);
  w.EndArray();
}

}  // namespace

std::string canonical_request(openai::Endpoint endpoint, std::string_view model,
                              const rapidjson::Value& body) {
  rapidjson::StringBuffer buffer;
  write_canonical_request(buffer, endpoint, model, body);
  return {buffer.GetString(), buffer.GetSize()};
}

std::string cache_key(openai::Endpoint endpoint, std::string_view model,
                      const rapidjson::Value& body) {
  // One buffer per thread, kept between requests: its memory is reused rather than allocated
  // and freed for every request.
  thread_local rapidjson::StringBuffer buffer;
  write_canonical_request(buffer, endpoint, model, body);
  std::string hex = sha256_hex(std::string_view(buffer.GetString(), buffer.GetSize()));
  if (buffer.GetSize() > 64 * 1024) {  // a huge request's memory is not kept
    buffer.Clear();
    buffer.ShrinkToFit();
  }
  return hex;
}

}  // namespace ondol::gateway::cache
