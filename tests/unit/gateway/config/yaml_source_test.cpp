// The loader's building blocks: scalar conversions, api_base normalisation, derived ids.
#include <gtest/gtest.h>

#include "gateway/config/deployment_parser.h"
#include "gateway/config/yaml_source.h"

namespace ondol::gateway::config_detail {
namespace {

YamlValue scalar(const std::string& yaml) {
  return YamlValue{.node = YAML::Load(yaml), .line = 7, .path = "x.y"};
}

TEST(YamlSource, Numbers) {
  YamlSource source("s.yaml");
  EXPECT_DOUBLE_EQ(*source.number(scalar("1e-7"), Minimum{}), 1e-7);
  EXPECT_DOUBLE_EQ(*source.number(scalar("'  2.5 '"), Minimum{}), 2.5);
  EXPECT_DOUBLE_EQ(*source.number(scalar("1_000.5"), Minimum{}), 1000.5);
  EXPECT_EQ(source.number(scalar("1__0"), Minimum{}).error().message,
            "s.yaml:7: x.y must be a number, got '1__0'");
  EXPECT_EQ(source.number(scalar("inf"), Minimum{}).error().message,
            "s.yaml:7: x.y must be a number, got 'inf'");
  EXPECT_EQ(source.number(scalar("''"), Minimum{}).error().message,
            "s.yaml:7: x.y must be a number, got ''");
  EXPECT_EQ(source.number(scalar("0"), Minimum{.value = 0, .strict = true}).error().message,
            "s.yaml:7: x.y must be > 0, got 0");
  EXPECT_TRUE(source.number(scalar("0"), Minimum{}).ok());
}

TEST(YamlSource, Integers) {
  YamlSource source("s.yaml");
  EXPECT_EQ(*source.integer(scalar("42"), 0), 42);
  EXPECT_EQ(*source.integer(scalar("\"-3\""), -5), -3);
  EXPECT_EQ(source.integer(scalar("4x"), 0).error().message,
            "s.yaml:7: x.y must be an integer, got '4x'");
  EXPECT_EQ(source.integer(scalar("2147483648"), 0).error().message,
            "s.yaml:7: x.y must be between 0 and 2147483647, got 2147483648");
  EXPECT_EQ(source.integer(scalar("{a: 1}"), 0).error().message,
            "s.yaml:7: x.y must be an integer, got a mapping");
}

TEST(YamlSource, Booleans) {
  YamlSource source("s.yaml");
  for (const char* yes : {"true", "True", "YES", "on", "'true'"}) {
    EXPECT_TRUE(*source.boolean(scalar(yes))) << yes;
  }
  for (const char* no : {"false", "FALSE", "no", "Off"}) EXPECT_FALSE(*source.boolean(scalar(no)));
  EXPECT_EQ(source.boolean(scalar("1")).error().message,
            "s.yaml:7: x.y must be true or false, got '1'");
}

TEST(YamlSource, TextAndEnvironment) {
  YamlSource source("s.yaml");
  EXPECT_EQ(*source.text(scalar("plain")), "plain");
  EXPECT_EQ(*source.text(scalar("12")), "12");
  EXPECT_EQ(source.text(scalar("[a]")).error().message,
            "s.yaml:7: x.y must be a string, got a list");
  EXPECT_EQ(source.text(scalar("os.environ/")).error().message,
            "s.yaml:7: x.y: 'os.environ/' names no environment variable");

  unsetenv("ONDOL_YAML_SOURCE_TEST");
  EXPECT_EQ(source.text(scalar("os.environ/ONDOL_YAML_SOURCE_TEST")).error().message,
            "s.yaml:7: environment variable ONDOL_YAML_SOURCE_TEST is not set (needed by x.y)");
  source.set_env_defaults({{"ONDOL_YAML_SOURCE_TEST", "fallback"}});
  EXPECT_EQ(*source.text(scalar("os.environ/ONDOL_YAML_SOURCE_TEST")), "fallback");
  setenv("ONDOL_YAML_SOURCE_TEST", "real", 1);
  EXPECT_EQ(*source.text(scalar("os.environ/ONDOL_YAML_SOURCE_TEST")), "real");
  unsetenv("ONDOL_YAML_SOURCE_TEST");
}

TEST(YamlSource, StringListsPointAtTheBadElement) {
  YamlSource source("s.yaml");
  const YamlValue list{.node = YAML::Load("- a\n- [b]\n"), .line = 1, .path = "l"};
  EXPECT_EQ(source.string_list(list).error().message,
            "s.yaml:2: l[1] must be a string, got a list");
}

TEST(YamlSource, WarningsComeOutInFileOrder) {
  YamlSource source("s.yaml");
  source.warn_at(9, "nine");
  source.warn_at(0, "nowhere");
  source.warn_at(2, "two");
  EXPECT_EQ(source.sorted_warnings(),
            (std::vector<std::string>{"s.yaml:2: two", "s.yaml:9: nine", "s.yaml: nowhere"}));
}

TEST(ApiBase, Normalisation) {
  EXPECT_EQ(*normalise_api_base("http://127.0.0.1:8001/v1/"), "http://127.0.0.1:8001/v1");
  EXPECT_EQ(*normalise_api_base("https://api.example.com"), "https://api.example.com");
  EXPECT_EQ(*normalise_api_base("https://api.example.com/"), "https://api.example.com");
  EXPECT_EQ(*normalise_api_base("HtTp://[::1]:9000/v1//"), "http://[::1]:9000/v1");
  EXPECT_EQ(*normalise_api_base("http://u:p@h:1/v1"), "http://u:p@h:1/v1");
  for (const char* bad :
       {"ftp://h/v1", "h:8000", "http://", "http:///v1", "http://h:0", "http://h:80x",
        "http://h:/v1", "http://h /v1", "http://h/v1?x=1", "http://[::1/v1"}) {
    EXPECT_FALSE(normalise_api_base(bad).ok()) << bad;
  }
}

TEST(DerivedId, IsFnv1aOfTheEntry) {
  DeploymentConfig d;
  d.model_name = "m";
  d.model = "openai/x";
  d.api_base = "https://api.openai.com/v1";
  const std::string id = derive_deployment_id(d, 0);
  EXPECT_EQ(id.size(), 12u);
  EXPECT_EQ(derive_deployment_id(d, 0), id);
  EXPECT_NE(derive_deployment_id(d, 1), id);
  // Field boundaries matter: moving a character between fields changes the id.
  DeploymentConfig shifted = d;
  shifted.model_name = "mo";
  shifted.model = "penai/x";
  EXPECT_NE(derive_deployment_id(shifted, 0), id);
}

TEST(DerivedId, KnownValue) {
  // FNV-1a 64 of "a\x1f" "b\x1f" "c\x1f" "0", computed independently (Python):
  //   h = 0xcbf29ce484222325
  //   for c in b"a\x1fb\x1fc\x1f0": h = ((h ^ c) * 0x100000001b3) % 2**64
  DeploymentConfig d;
  d.model_name = "a";
  d.model = "b";
  d.api_base = "c";
  EXPECT_EQ(derive_deployment_id(d, 0), "ea7bf524cd0c");
}

}  // namespace
}  // namespace ondol::gateway::config_detail
