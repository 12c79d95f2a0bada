#include "limits/resp.h"

#include <charconv>

namespace ondol::limits {

std::string encode_command(const std::vector<std::string>& args) {
  std::string out;
  size_t size = 16;
  for (const std::string& a : args) size += a.size() + 16;
  out.reserve(size);
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const std::string& a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

namespace {

// Reads the line starting at `pos` (without its CRLF) and moves `pos` past it.
ParseStatus read_line(std::string_view buf, size_t& pos, std::string_view& line) {
  size_t end = buf.find("\r\n", pos);
  if (end == std::string_view::npos) return ParseStatus::Incomplete;
  line = buf.substr(pos, end - pos);
  pos = end + 2;
  return ParseStatus::Complete;
}

bool parse_int(std::string_view s, int64_t& v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

ParseStatus parse_at(std::string_view buf, size_t& pos, RespValue& out, int depth) {
  if (depth > kMaxNesting) return ParseStatus::Invalid;
  if (pos >= buf.size()) return ParseStatus::Incomplete;
  const char kind = buf[pos++];
  std::string_view line;
  ParseStatus st = read_line(buf, pos, line);
  if (st != ParseStatus::Complete) return st;
  switch (kind) {
    case '+':
      out.type = RespType::SimpleString;
      out.str.assign(line);
      return ParseStatus::Complete;
    case '-':
      out.type = RespType::Error;
      out.str.assign(line);
      return ParseStatus::Complete;
    case ':':
      out.type = RespType::Integer;
      return parse_int(line, out.integer) ? ParseStatus::Complete : ParseStatus::Invalid;
    case '$': {
      int64_t n = 0;
      if (!parse_int(line, n) || n < -1 || n > kMaxBulkBytes) return ParseStatus::Invalid;
      if (n == -1) {
        out.type = RespType::Null;
        return ParseStatus::Complete;
      }
      if (buf.size() - pos < static_cast<size_t>(n) + 2) return ParseStatus::Incomplete;
      if (buf.substr(pos + n, 2) != "\r\n") return ParseStatus::Invalid;
      out.type = RespType::BulkString;
      out.str.assign(buf.substr(pos, n));
      pos += n + 2;
      return ParseStatus::Complete;
    }
    case '*': {
      int64_t n = 0;
      if (!parse_int(line, n) || n < -1 || n > kMaxArrayElements) return ParseStatus::Invalid;
      if (n == -1) {
        out.type = RespType::Null;
        return ParseStatus::Complete;
      }
      out.type = RespType::Array;
      out.elements.clear();
      // Do not reserve n up front: a partial reply is parsed again from the start.
      for (int64_t i = 0; i < n; ++i) {
        RespValue v;
        st = parse_at(buf, pos, v, depth + 1);
        if (st != ParseStatus::Complete) return st;
        out.elements.push_back(std::move(v));
      }
      return ParseStatus::Complete;
    }
    default:
      return ParseStatus::Invalid;
  }
}

}  // namespace

ParseStatus parse_reply(std::string_view buf, size_t& consumed, RespValue& out) {
  size_t pos = 0;
  out = RespValue{};
  ParseStatus st = parse_at(buf, pos, out, 0);
  if (st == ParseStatus::Complete) consumed = pos;
  return st;
}

}  // namespace ondol::limits
