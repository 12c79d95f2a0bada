// RESP2, the Redis wire protocol, as pure functions: commands are encoded as arrays of bulk
// strings; replies are parsed from a buffer that may hold a partial reply. No I/O here, so the
// parser is tested (and fuzzable) without a server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ondol::limits {

enum class RespType { SimpleString, Error, Integer, BulkString, Array, Null };

struct RespValue {
  RespType type = RespType::Null;
  std::string str;                  // SimpleString, Error, BulkString
  int64_t integer = 0;              // Integer
  std::vector<RespValue> elements;  // Array

  bool is_error() const { return type == RespType::Error; }
  bool is_ok() const { return type == RespType::SimpleString && str == "OK"; }
};

// Bounds on what a reply may hold, so that a broken or hostile peer cannot exhaust memory.
inline constexpr int64_t kMaxBulkBytes = 64 << 20;
inline constexpr int64_t kMaxArrayElements = 1 << 20;
inline constexpr int kMaxNesting = 16;

std::string encode_command(const std::vector<std::string>& args);

enum class ParseStatus { Complete, Incomplete, Invalid };

// Parses one reply from the start of `buf`. Complete: `out` holds it and `consumed` its length.
// Incomplete: more bytes are needed. Invalid: not RESP2 (the connection must be dropped).
ParseStatus parse_reply(std::string_view buf, size_t& consumed, RespValue& out);

}  // namespace ondol::limits
