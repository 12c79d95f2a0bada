#include "bench/regress.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>

namespace ondol::bench {

namespace {

constexpr size_t kContextBefore = 30;
constexpr size_t kContextAfter = 50;

std::string_view str(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

// UTF-8 to code points; a byte that does not start a valid sequence stands for itself.
std::vector<char32_t> code_points(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    bool valid = len > 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k)
      valid = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (!valid) {
      out.push_back(c);
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    out.push_back(cp);
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// A quoted excerpt of cps[from, to) with newlines, tabs and other controls escaped.
std::string excerpt(const std::vector<char32_t>& cps, size_t from, size_t to) {
  to = std::min(to, cps.size());
  std::string out = from > 0 ? "..." : "";
  out += '"';
  for (size_t i = from; i < to; ++i) {
    char32_t c = cps[i];
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c < 0x20)
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    else
      append_utf8(out, c);
  }
  out += '"';
  if (to < cps.size()) out += "...";
  return out;
}

using Writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

void write_string(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

bool read_entry_fields(const rapidjson::Value& v, RegressEntry& e, std::string& error) {
  if (auto it = v.FindMember("prompt"); it != v.MemberEnd() && it->value.IsString()) {
    e.prompt = std::string(str(it->value));
  } else {
    error = "an entry without a \"prompt\" string";
    return false;
  }
  if (auto it = v.FindMember("max_tokens"); it != v.MemberEnd()) {
    if (!it->value.IsInt64() || it->value.GetInt64() < 1) {
      error = "\"max_tokens\" must be a positive integer";
      return false;
    }
    e.max_tokens = it->value.GetInt64();
  }
  if (auto it = v.FindMember("temperature"); it != v.MemberEnd()) {
    if (!it->value.IsNumber() || it->value.GetDouble() < 0) {
      error = "\"temperature\" must be a number >= 0";
      return false;
    }
    e.temperature = it->value.GetDouble();
  }
  if (auto it = v.FindMember("seed"); it != v.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsInt64()) {
      error = "\"seed\" must be an integer";
      return false;
    }
    e.seed = it->value.GetInt64();
  }
  return true;
}

}  // namespace

std::string baseline_to_json(const Baseline& b) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("ondol_regress_baseline");
  w.Int(kBaselineFormatVersion);
  w.Key("model");
  write_string(w, b.model);
  w.Key("backend");
  write_string(w, b.backend);
  w.Key("endpoint");
  write_string(w, b.endpoint);
  w.Key("created");
  write_string(w, b.created);
  w.Key("entries");
  w.StartArray();
  for (const auto& e : b.entries) {
    w.StartObject();
    w.Key("prompt");
    write_string(w, e.prompt);
    w.Key("max_tokens");
    w.Int64(e.max_tokens);
    w.Key("temperature");
    w.Double(e.temperature);
    w.Key("seed");
    if (e.seed)
      w.Int64(*e.seed);
    else
      w.Null();
    w.Key("expected");
    write_string(w, e.expected);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Result<Baseline> baseline_from_json(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("entries") || !d["entries"].IsArray())
    return make_error("not a regress baseline: expected a JSON object with \"entries\"");
  Baseline b;
  auto text = [&](const char* key) {
    auto it = d.FindMember(key);
    return it != d.MemberEnd() && it->value.IsString() ? std::string(str(it->value)) : "";
  };
  b.model = text("model");
  b.backend = text("backend");
  b.endpoint = text("endpoint");
  b.created = text("created");
  size_t index = 0;
  for (const auto& v : d["entries"].GetArray()) {
    ++index;
    RegressEntry e;
    std::string error;
    if (!v.IsObject() || !read_entry_fields(v, e, error))
      return make_error(
          fmt::format("entry {}: {}", index, error.empty() ? "not an object" : error));
    auto it = v.FindMember("expected");
    if (it == v.MemberEnd() || !it->value.IsString())
      return make_error(fmt::format("entry {}: no \"expected\" answer", index));
    e.expected = std::string(str(it->value));
    b.entries.push_back(std::move(e));
  }
  return b;
}

Result<std::vector<RegressEntry>> prompts_from_text(std::string_view text, bool json,
                                                    const RegressEntry& defaults) {
  std::vector<RegressEntry> out;
  if (!json) {
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty()) {
        RegressEntry e = defaults;
        e.prompt = std::string(line);
        out.push_back(std::move(e));
      }
      pos = end + 1;
    }
  } else {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    if (d.HasParseError() || !d.IsArray())
      return make_error("expected a JSON list of prompts (strings or {\"prompt\": ...} objects)");
    size_t index = 0;
    for (const auto& v : d.GetArray()) {
      ++index;
      RegressEntry e = defaults;
      std::string error;
      if (v.IsString())
        e.prompt = std::string(str(v));
      else if (!v.IsObject() || !read_entry_fields(v, e, error))
        return make_error(
            fmt::format("prompt {}: {}", index, error.empty() ? "not a string or object" : error));
      out.push_back(std::move(e));
    }
  }
  if (out.empty()) return make_error("no prompts");
  return out;
}

double text_similarity(std::string_view a, std::string_view b) {
  std::vector<char32_t> x = code_points(a), y = code_points(b);
  if (x.empty() && y.empty()) return 1.0;
  // Two rows of the edit-distance table: O(|x| * |y|) time, O(|y|) memory.
  std::vector<size_t> prev(y.size() + 1), cur(y.size() + 1);
  for (size_t j = 0; j <= y.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= x.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= y.size(); ++j) {
      size_t substitute = prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
    }
    std::swap(prev, cur);
  }
  double distance = static_cast<double>(prev[y.size()]);
  return 1.0 - distance / static_cast<double>(std::max(x.size(), y.size()));
}

std::string describe_difference(std::string_view expected, std::string_view got) {
  std::vector<char32_t> e = code_points(expected), g = code_points(got);
  size_t at = 0;
  while (at < e.size() && at < g.size() && e[at] == g[at]) ++at;
  size_t line = 1, column = 1;
  for (size_t i = 0; i < at; ++i) {
    if (e[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  size_t from = at > kContextBefore ? at - kContextBefore : 0;
  std::string out =
      fmt::format("first difference at character {} (line {}, column {})", at, line, column);
  if (at == e.size())
    out += fmt::format("; the answer is longer ({} vs {} characters)", g.size(), e.size());
  else if (at == g.size())
    out += fmt::format("; the answer is shorter ({} vs {} characters)", g.size(), e.size());
  out += "\n";
  out += "  expected: " + excerpt(e, from, at + kContextAfter) + "\n";
  out += "  got:      " + excerpt(g, from, at + kContextAfter) + "\n";
  return out;
}

Comparison compare_answer(const RegressEntry& entry, std::string_view got, double min_similarity) {
  Comparison c;
  if (entry.temperature == 0) {
    c.match = got == entry.expected;
    c.similarity = c.match ? 1.0 : text_similarity(entry.expected, got);
    if (!c.match)
      c.diff = "greedy (temperature 0): exact match required; " +
               describe_difference(entry.expected, got);
    return c;
  }
  c.similarity = text_similarity(entry.expected, got);
  c.match = c.similarity >= min_similarity;
  if (!c.match)
    c.diff = fmt::format("temperature {}: similarity {:.3f} below --min-similarity {:.3f}; ",
                         entry.temperature, c.similarity, min_similarity) +
             describe_difference(entry.expected, got);
  return c;
}

}  // namespace ondol::bench
