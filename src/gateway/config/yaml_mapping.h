// Internal to the config loader: one YAML mapping (a config section) being read key by key.
// It remembers which keys a parser took, so that whatever is left over can be reported as
// unknown with its line; it applies YAML merge keys ("<<: *defaults", which yaml-cpp 0.7 leaves
// to the reader) and warns about duplicated keys, of which the last one wins as in PyYAML.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/yaml_source.h"

namespace ondol::gateway::config_detail {

class YamlMapping {
 public:
  // Fails unless value.node is a mapping with scalar keys.
  static Result<YamlMapping> from(YamlSource& source, const YamlValue& value);

  int line() const { return line_; }
  const std::string& path() const { return path_; }
  YamlSource& source() const { return *source_; }

  // The value under key, marking the key as read. nullopt when the key is absent or its value is
  // empty/null: an empty value means "use the default", as None does in LiteLLM.
  std::optional<YamlValue> take(std::string_view key);
  // As take(), but an absent or empty value is an error "PATH.KEY is required".
  Result<YamlValue> take_required(std::string_view key);

  // Typed readers: leave *out untouched (its default) when the key is absent or empty.
  Status read_string(std::string_view key, std::string* out);
  Status read_number(std::string_view key, Minimum min, double* out);
  Status read_number(std::string_view key, Minimum min, std::optional<double>* out);
  Status read_int(std::string_view key, int min_value, int* out);
  Status read_int(std::string_view key, int min_value, std::optional<int>* out);
  Status read_bool(std::string_view key, bool* out);
  Status read_string_list(std::string_view key, std::vector<std::string>* out);

  // Every key, in file order (merged keys after explicit ones).
  std::vector<std::string> keys() const;

  // Marks every key as read (free-form sections such as model_info).
  void take_all();

  // Warns "FILE:LINE: unknown key 'PATH.KEY' ignored" for every key neither taken nor listed in
  // accepted (keys LiteLLM defines that ondol accepts without acting on them).
  void warn_unknown(std::span<const std::string_view> accepted);

 private:
  struct Entry {
    std::string key;
    YAML::Node value;
    int line = 0;  // of the key: an empty value has no position of its own
    bool taken = false;
  };

  YamlMapping(YamlSource* source, std::string path, int line)
      : source_(source), path_(std::move(path)), line_(line) {}

  Status add_entries(const YAML::Node& node, bool from_merge, int depth);
  Entry* find(std::string_view key);
  std::string child_path(std::string_view key) const;

  YamlSource* source_;
  std::string path_;  // "" for the top level
  int line_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace ondol::gateway::config_detail
