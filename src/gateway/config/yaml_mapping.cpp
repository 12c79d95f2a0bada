#include "gateway/config/yaml_mapping.h"

#include <algorithm>

#include <fmt/format.h>

namespace ondol::gateway::config_detail {
namespace {

// YAML's merge key: "<<: *anchor" or "<<: [*a, *b]" copies keys not given explicitly.
constexpr std::string_view kMergeKey = "<<";
// Merged mappings may merge others; deeper than this is a mistake (or an alias loop).
constexpr int kMaxMergeDepth = 16;

}  // namespace

Result<YamlMapping> YamlMapping::from(YamlSource& source, const YamlValue& value) {
  if (!value.node.IsMap()) {
    const std::string name = value.path.empty() ? "the configuration" : value.path;
    return source.error_at(value.line, fmt::format("{} must be a mapping, got {}", name,
                                                   YamlSource::describe(value.node)));
  }
  YamlMapping mapping(&source, value.path, value.line);
  if (Status s = mapping.add_entries(value.node, /*from_merge=*/false, 0); !s.ok()) {
    return s.error();
  }
  return mapping;
}

Status YamlMapping::add_entries(const YAML::Node& node, bool from_merge, int depth) {
  if (depth > kMaxMergeDepth) {
    return source_->error_at(line_,
                             fmt::format("{}: merge keys nested deeper than {}",
                                         path_.empty() ? "top level" : path_, kMaxMergeDepth));
  }
  std::vector<YamlValue> merges;
  for (const auto& kv : node) {
    const int key_line = YamlSource::line_of(kv.first);
    if (!kv.first.IsScalar()) {
      return source_->error_at(key_line, fmt::format("{}: keys must be strings, got {}",
                                                     path_.empty() ? "top level" : path_,
                                                     YamlSource::describe(kv.first)));
    }
    const std::string& key = kv.first.Scalar();
    if (key == kMergeKey) {
      merges.push_back(YamlValue{.node = kv.second, .line = key_line, .path = child_path(key)});
      continue;
    }
    if (Entry* existing = find(key); existing != nullptr) {
      if (from_merge) continue;  // explicit keys and earlier merges win
      source_->warn_at(key_line, fmt::format("duplicate key '{}' (first on line {}); the last one "
                                             "wins",
                                             child_path(key), existing->line));
      existing->value = kv.second;
      existing->line = key_line;
      continue;
    }
    entries_.push_back(Entry{.key = key, .value = kv.second, .line = key_line});
  }
  for (const YamlValue& merge : merges) {
    if (merge.node.IsMap()) {
      if (Status s = add_entries(merge.node, /*from_merge=*/true, depth + 1); !s.ok()) return s;
      continue;
    }
    if (merge.node.IsSequence()) {
      for (const YAML::Node& element : merge.node) {
        if (!element.IsMap()) {
          return source_->error_at(merge.line,
                                   fmt::format("{} must list mappings, got {}", merge.path,
                                               YamlSource::describe(element)));
        }
        if (Status s = add_entries(element, /*from_merge=*/true, depth + 1); !s.ok()) return s;
      }
      continue;
    }
    return source_->error_at(
        merge.line, fmt::format("{} must be a mapping or a list of mappings, got {}", merge.path,
                                YamlSource::describe(merge.node)));
  }
  return Ok{};
}

YamlMapping::Entry* YamlMapping::find(std::string_view key) {
  auto it =
      std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; });
  return it == entries_.end() ? nullptr : &*it;
}

std::string YamlMapping::child_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

std::optional<YamlValue> YamlMapping::take(std::string_view key) {
  Entry* entry = find(key);
  if (entry == nullptr) return std::nullopt;
  entry->taken = true;
  if (entry->value.IsNull()) return std::nullopt;
  // A block value's own mark points at its first line, which may lie below the key.
  const int value_line = YamlSource::line_of(entry->value);
  return YamlValue{.node = entry->value,
                   .line = value_line > 0 ? value_line : entry->line,
                   .path = child_path(key)};
}

Result<YamlValue> YamlMapping::take_required(std::string_view key) {
  std::optional<YamlValue> value = take(key);
  if (!value) return source_->error_at(line_, fmt::format("{} is required", child_path(key)));
  return std::move(*value);
}

Status YamlMapping::read_string(std::string_view key, std::string* out) {
  std::optional<YamlValue> value = take(key);
  if (!value) return Ok{};
  Result<std::string> s = source_->text(*value);
  if (!s.ok()) return s.error();
  *out = std::move(*s);
  return Ok{};
}

Status YamlMapping::read_number(std::string_view key, Minimum min, double* out) {
  std::optional<YamlValue> value = take(key);
  if (!value) return Ok{};
  Result<double> n = source_->number(*value, min);
  if (!n.ok()) return n.error();
  *out = *n;
  return Ok{};
}

Status YamlMapping::read_number(std::string_view key, Minimum min, std::optional<double>* out) {
  std::optional<YamlValue> value = take(key);
  if (!value) return Ok{};
  Result<double> n = source_->number(*value, min);
  if (!n.ok()) return n.error();
  *out = *n;
  return Ok{};
}

Status YamlMapping::read_int(std::string_view key, int min_value, int* out) {
  std::optional<YamlValue> value = take(key);
  if (!value) return Ok{};
  Result<int> n = source_->integer(*value, min_value);
  if (!n.ok()) return n.error();
  *out = *n;
  return Ok{};
}

Status YamlMapping::read_int(std::string_view key, int min_value, std::optional<int>* out) {
  std::optional<YamlValue> value = take(key);
  if (!value) return Ok{};
  Result<int> n = source_->integer(*value, min_value);
  if (!n.ok()) return n.error();
  *out = *n;
  return Ok{};
}

Status YamlMapping::read_bool(std::string_view key, bool* out) {
  std::optional<YamlValue> value = take(key);
  if (!value) return Ok{};
  Result<bool> b = source_->boolean(*value);
  if (!b.ok()) return b.error();
  *out = *b;
  return Ok{};
}

Status YamlMapping::read_string_list(std::string_view key, std::vector<std::string>* out) {
  std::optional<YamlValue> value = take(key);
  if (!value) return Ok{};
  Result<std::vector<std::string>> list = source_->string_list(*value);
  if (!list.ok()) return list.error();
  *out = std::move(*list);
  return Ok{};
}

std::vector<std::string> YamlMapping::keys() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(e.key);
  return out;
}

void YamlMapping::take_all() {
  for (Entry& e : entries_) e.taken = true;
}

void YamlMapping::warn_unknown(std::span<const std::string_view> accepted) {
  for (const Entry& e : entries_) {
    if (e.taken) continue;
    if (std::find(accepted.begin(), accepted.end(), e.key) != accepted.end()) continue;
    source_->warn_at(e.line, fmt::format("unknown key '{}' ignored", child_path(e.key)));
  }
}

}  // namespace ondol::gateway::config_detail
