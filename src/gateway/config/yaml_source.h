// Internal to the config loader (not part of the public config API): one YAML file being read.
// YamlSource knows the file name for "FILE:LINE: message" texts, collects warnings, resolves
// "os.environ/NAME" strings and turns scalars into typed values the way LiteLLM (Python) would
// accept them: numbers may be written as strings ("120"), booleans as yes/no/on/off.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/result.h"

namespace ondol::gateway::config_detail {

// A value found in the file, with what messages need to point at it.
struct YamlValue {
  YAML::Node node;
  int line = 0;      // 1-based; 0 when unknown
  std::string path;  // "model_list[0].litellm_params.timeout"
};

// Inclusive lower bound for numeric values; exclusive when strict is set (timeouts > 0).
struct Minimum {
  double value = 0;
  bool strict = false;
};

class YamlSource {
 public:
  // Strings of the form kEnvPrefix + NAME are replaced by the environment variable NAME.
  static constexpr std::string_view kEnvPrefix = "os.environ/";

  explicit YamlSource(std::string name) : name_(std::move(name)) {}

  const std::string& name() const { return name_; }

  // 1-based line of a node from the parser, or 0 when yaml-cpp recorded none.
  static int line_of(const YAML::Node& node);

  // "config.yaml:12: message" (the line is left out when unknown).
  Error error_at(int line, std::string_view message) const;
  void warn_at(int line, std::string_view message);
  // The warnings so far in file order (those without a line last), as "FILE:LINE: message".
  std::vector<std::string> sorted_warnings() const;

  // Fallback values for os.environ/NAME when NAME is not in the process environment: the
  // top-level environment_variables section, as LiteLLM treats it (the real environment wins).
  void set_env_defaults(std::map<std::string, std::string> defaults) {
    env_defaults_ = std::move(defaults);
  }

  // A scalar as text, with os.environ/NAME resolved. Lists and mappings are errors.
  Result<std::string> text(const YamlValue& value) const;
  // Finite number (integer or decimal, also when quoted) not below min.
  Result<double> number(const YamlValue& value, Minimum min) const;
  // Whole number within [min_value, INT_MAX].
  Result<int> integer(const YamlValue& value, int min_value) const;
  // true/false, yes/no, on/off in any case.
  Result<bool> boolean(const YamlValue& value) const;
  // A list of scalars; each element resolved like text().
  Result<std::vector<std::string>> string_list(const YamlValue& value) const;

  // A human word for a node's kind in messages: "a list", "a mapping", "'abc'".
  static std::string describe(const YAML::Node& node);

 private:
  struct Warning {
    int line = 0;
    std::string text;
  };

  std::string name_;
  std::vector<Warning> warnings_;
  std::map<std::string, std::string> env_defaults_;
};

}  // namespace ondol::gateway::config_detail
