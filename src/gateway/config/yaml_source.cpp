#include "gateway/config/yaml_source.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace ondol::gateway::config_detail {
namespace {

// Longest scalar quoted back in a message; longer ones are cut with "...".
constexpr size_t kMaxQuotedChars = 60;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Python (and YAML 1.1) accept digit separators and a leading '+': "10_000", "+5".
std::string normalise_number_text(std::string_view raw) {
  std::string_view s = trim(raw);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const bool separator = s[i] == '_' && i > 0 && i + 1 < s.size() &&
                           std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
                           std::isdigit(static_cast<unsigned char>(s[i + 1]));
    if (!separator) out.push_back(s[i]);
  }
  return out;
}

std::string quoted(std::string_view s) {
  if (s.size() > kMaxQuotedChars) return fmt::format("'{}...'", s.substr(0, kMaxQuotedChars));
  return fmt::format("'{}'", s);
}

}  // namespace

int YamlSource::line_of(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.line >= 0 ? mark.line + 1 : 0;
}

Error YamlSource::error_at(int line, std::string_view message) const {
  if (line <= 0) return make_error(fmt::format("{}: {}", name_, message));
  return make_error(fmt::format("{}:{}: {}", name_, line, message));
}

void YamlSource::warn_at(int line, std::string_view message) {
  warnings_.push_back(Warning{.line = line, .text = error_at(line, message).message});
}

std::vector<std::string> YamlSource::sorted_warnings() const {
  std::vector<Warning> sorted = warnings_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Warning& a, const Warning& b) {
    return (a.line == 0 ? INT_MAX : a.line) < (b.line == 0 ? INT_MAX : b.line);
  });
  std::vector<std::string> out;
  out.reserve(sorted.size());
  for (Warning& w : sorted) out.push_back(std::move(w.text));
  return out;
}

std::string YamlSource::describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "an empty value";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      break;
  }
  return quoted(node.Scalar());
}

Result<std::string> YamlSource::text(const YamlValue& value) const {
  if (!value.node.IsScalar()) {
    return error_at(value.line,
                    fmt::format("{} must be a string, got {}", value.path, describe(value.node)));
  }
  const std::string& raw = value.node.Scalar();
  if (raw.rfind(kEnvPrefix, 0) != 0) return raw;

  const std::string var = raw.substr(kEnvPrefix.size());
  if (var.empty()) {
    return error_at(value.line,
                    fmt::format("{}: '{}' names no environment variable", value.path, kEnvPrefix));
  }
  if (const char* env = std::getenv(var.c_str()); env != nullptr) return std::string(env);
  if (auto it = env_defaults_.find(var); it != env_defaults_.end()) return it->second;
  return error_at(value.line, fmt::format("environment variable {} is not set (needed by {})", var,
                                          value.path));
}

Result<double> YamlSource::number(const YamlValue& value, Minimum min) const {
  if (!value.node.IsScalar()) {
    return error_at(value.line,
                    fmt::format("{} must be a number, got {}", value.path, describe(value.node)));
  }
  Result<std::string> resolved = text(value);
  if (!resolved.ok()) return resolved.error();
  const std::string s = normalise_number_text(*resolved);
  double out = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(out)) {
    return error_at(value.line,
                    fmt::format("{} must be a number, got {}", value.path, quoted(*resolved)));
  }
  if (min.strict ? !(out > min.value) : !(out >= min.value)) {
    return error_at(value.line, fmt::format("{} must be {} {:g}, got {:g}", value.path,
                                            min.strict ? ">" : ">=", min.value, out));
  }
  return out;
}

Result<int> YamlSource::integer(const YamlValue& value, int min_value) const {
  if (!value.node.IsScalar()) {
    return error_at(value.line,
                    fmt::format("{} must be an integer, got {}", value.path, describe(value.node)));
  }
  Result<std::string> resolved = text(value);
  if (!resolved.ok()) return resolved.error();
  const std::string s = normalise_number_text(*resolved);
  long long out = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return error_at(value.line,
                    fmt::format("{} must be an integer, got {}", value.path, quoted(*resolved)));
  }
  if (out < min_value || out > INT_MAX) {
    return error_at(value.line, fmt::format("{} must be between {} and {}, got {}", value.path,
                                            min_value, INT_MAX, out));
  }
  return static_cast<int>(out);
}

Result<bool> YamlSource::boolean(const YamlValue& value) const {
  if (!value.node.IsScalar()) {
    return error_at(value.line, fmt::format("{} must be true or false, got {}", value.path,
                                            describe(value.node)));
  }
  Result<std::string> resolved = text(value);
  if (!resolved.ok()) return resolved.error();
  std::string s(trim(*resolved));
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  return error_at(value.line,
                  fmt::format("{} must be true or false, got {}", value.path, quoted(*resolved)));
}

Result<std::vector<std::string>> YamlSource::string_list(const YamlValue& value) const {
  if (!value.node.IsSequence()) {
    return error_at(value.line, fmt::format("{} must be a list of strings, got {}", value.path,
                                            describe(value.node)));
  }
  std::vector<std::string> out;
  out.reserve(value.node.size());
  size_t index = 0;
  for (const YAML::Node& element : value.node) {
    const int line = line_of(element);
    Result<std::string> s = text(YamlValue{.node = element,
                                           .line = line > 0 ? line : value.line,
                                           .path = fmt::format("{}[{}]", value.path, index++)});
    if (!s.ok()) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace ondol::gateway::config_detail
