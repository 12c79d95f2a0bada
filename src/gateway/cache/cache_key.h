// The exact-match response cache's key: a SHA-256 of the model and the canonical request, so that
// two requests that differ only in field order, number spelling (1 vs 1.0) or fields that cannot
// change the answer (user, metadata, cache controls) share one entry. Pure functions, no I/O.
#pragma once

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

#include "openai/request.h"

namespace ondol::gateway::cache {

// The per-request "cache" object, with LiteLLM's names:
//   {"no-cache": true}   do not read the cache (the answer is still stored unless no-store)
//   {"no-store": true}   do not store this answer
//   {"ttl": 60}          store this answer for 60 s instead of cache_params.ttl
//   {"s-maxage": 30}     accept a cached answer only if it is at most 30 s old
//   {"use-cache": true}  opt in: cache this request even if it is not deterministic, and when
//                        cache_params.mode is default_off
struct CacheControl {
  bool no_cache = false;
  bool no_store = false;
  bool use_cache = false;
  std::optional<double> ttl_s;
  std::optional<double> s_maxage_s;
};

CacheControl read_cache_control(const rapidjson::Value& body);

// True when the same request gives the same answer: embeddings always; completions when
// temperature is 0 or a seed is set.
bool is_deterministic(openai::Endpoint endpoint, const rapidjson::Value& body);

// The request in canonical form: the endpoint, the model and every field except those that
// cannot change the answer, with object keys sorted at every depth and integral numbers written
// as integers. Deterministic across processes (the key is shared through Redis).
std::string canonical_request(openai::Endpoint endpoint, std::string_view model,
                              const rapidjson::Value& body);

// SHA-256 hex of canonical_request().
std::string cache_key(openai::Endpoint endpoint, std::string_view model,
                      const rapidjson::Value& body);

}  // namespace ondol::gateway::cache
