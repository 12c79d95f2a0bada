// parse_config / load_config_file: the LiteLLM fixture, every class of error with its line,
// warnings for unknown keys, and the LiteLLM compatibility rules of docs/configuration.md.
#include "gateway/config/config.h"

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace ondol::gateway {
namespace {

const std::string kFixture = std::string(ONDOL_SHARED_DIR) + "/fixtures/config/litellm-style.yaml";

// Sets (or removes, for nullopt) an environment variable for one test; restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) previous_ = old;
    if (value) {
      setenv(name_.c_str(), value->c_str(), /*overwrite=*/1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (previous_) {
      setenv(name_.c_str(), previous_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

// The environment the fixture names; VLLM_A_URL ends in '/' to check the normalisation.
struct FixtureEnv {
  ScopedEnv master{"LITELLM_MASTER_KEY", "sk-fixture-master-7f3a"};
  ScopedEnv a{"VLLM_A_URL", "http://127.0.0.1:8001/v1/"};
  ScopedEnv b{"VLLM_B_URL", "http://127.0.0.1:8002/v1"};
};

// A minimal valid deployment list that tests append their own sections to.
constexpr const char* kOneMock =
    "model_list:\n"
    "  - model_name: m\n"
    "    litellm_params:\n"
    "      model: mock/m\n";

Result<GatewayConfig> parse(const std::string& yaml) {
  return parse_config(yaml, "test.yaml");
}

std::string error_of(const std::string& yaml) {
  Result<GatewayConfig> r = parse(yaml);
  EXPECT_FALSE(r.ok()) << "expected an error for:\n" << yaml;
  return r.ok() ? std::string() : r.error().message;
}

TEST(GatewayConfig, LoadsTheLiteLLMFixtureUnchanged) {
  FixtureEnv env;
  Result<GatewayConfig> r = load_config_file(kFixture);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const GatewayConfig& c = *r;
  EXPECT_EQ(c.source, kFixture);
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();

  ASSERT_EQ(c.deployments.size(), 3u);
  const DeploymentConfig& a = c.deployments[0];
  EXPECT_EQ(a.model_name, "chat-small");
  EXPECT_EQ(a.model, "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_EQ(a.provider, "hosted_vllm");
  EXPECT_EQ(a.kind, ProviderKind::OpenAICompatible);
  EXPECT_EQ(a.upstream_model, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_EQ(a.api_base, "http://127.0.0.1:8001/v1");
  EXPECT_EQ(a.api_key, "EMPTY");
  EXPECT_DOUBLE_EQ(a.timeout_s, 120);
  EXPECT_DOUBLE_EQ(a.stream_timeout_s, 30);
  EXPECT_EQ(a.rpm, 600);
  EXPECT_FALSE(a.tpm.has_value());
  EXPECT_EQ(a.weight, 9);
  EXPECT_EQ(a.line, 4);

  const DeploymentConfig& b = c.deployments[1];
  EXPECT_EQ(b.model_name, "chat-small");
  EXPECT_EQ(b.upstream_model, "meta-llama/Llama-3.1-8B-Instruct-v2");
  EXPECT_EQ(b.api_base, "http://127.0.0.1:8002/v1");
  EXPECT_EQ(b.weight, 1);
  EXPECT_DOUBLE_EQ(b.timeout_s, 120);
  EXPECT_DOUBLE_EQ(b.stream_timeout_s, 120) << "stream_timeout defaults to the timeout";
  EXPECT_FALSE(b.rpm.has_value());
  EXPECT_EQ(b.line, 13);

  const DeploymentConfig& backup = c.deployments[2];
  EXPECT_EQ(backup.model_name, "chat-backup");
  EXPECT_EQ(backup.provider, "openai");
  EXPECT_EQ(backup.upstream_model, "backup-model");
  EXPECT_EQ(backup.api_base, "http://127.0.0.1:8002/v1");
  EXPECT_EQ(backup.max_parallel_requests, 8);
  EXPECT_EQ(backup.weight, 1);
  EXPECT_DOUBLE_EQ(backup.timeout_s, 60) << "no timeout: litellm_settings.request_timeout";
  EXPECT_DOUBLE_EQ(backup.stream_timeout_s, 60);
  EXPECT_DOUBLE_EQ(backup.input_cost_per_token, 0.0000002);
  EXPECT_DOUBLE_EQ(backup.output_cost_per_token, 0.0000006);
  EXPECT_DOUBLE_EQ(a.input_cost_per_token, 0);
  EXPECT_EQ(backup.line, 20);

  // Derived ids: 12 hex digits, distinct even for deployments that share a name.
  for (const DeploymentConfig& d : c.deployments) {
    EXPECT_EQ(d.id.size(), 12u) << d.id;
    EXPECT_EQ(d.id.find_first_not_of("0123456789abcdef"), std::string::npos) << d.id;
  }
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(b.id, backup.id);

  EXPECT_EQ(c.model_names(), (std::vector<std::string>{"chat-small", "chat-backup"}));
  EXPECT_EQ(c.router.routing_strategy, RoutingStrategy::LeastBusy);
  EXPECT_EQ(c.router.num_retries, 2);
  EXPECT_EQ(c.router.allowed_fails, 3);
  EXPECT_DOUBLE_EQ(c.router.cooldown_time_s, 30);
  ASSERT_EQ(c.router.fallbacks.size(), 1u);
  EXPECT_EQ(c.router.fallbacks[0].model_name, "chat-small");
  EXPECT_EQ(c.router.fallbacks[0].fallbacks, std::vector<std::string>{"chat-backup"});

  EXPECT_DOUBLE_EQ(c.request_timeout_s, 60);
  EXPECT_TRUE(c.drop_params);
  EXPECT_EQ(c.callbacks, std::vector<std::string>{"prometheus"});
  EXPECT_EQ(c.master_key, "sk-fixture-master-7f3a");
  EXPECT_EQ(c.public_routes, (std::vector<std::string>{"/health", "/metrics"}));
}

TEST(GatewayConfig, DerivedIdsAreStableAndDependOnTheEntry) {
  FixtureEnv env;
  Result<GatewayConfig> first = load_config_file(kFixture);
  Result<GatewayConfig> second = load_config_file(kFixture);
  ASSERT_TRUE(first.ok() && second.ok());
  for (size_t i = 0; i < first->deployments.size(); ++i) {
    EXPECT_EQ(first->deployments[i].id, second->deployments[i].id);
  }
  // The same entry at another position (or behind another api_base) gets another id.
  ScopedEnv moved("VLLM_A_URL", "http://127.0.0.1:9001/v1");
  Result<GatewayConfig> third = load_config_file(kFixture);
  ASSERT_TRUE(third.ok());
  EXPECT_NE(third->deployments[0].id, first->deployments[0].id);
  EXPECT_EQ(third->deployments[2].id, first->deployments[2].id);
}

TEST(GatewayConfig, ModelInfoIdIsUsedAndMustBeUnique) {
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params: {model: mock/a}\n"
      "    model_info: {id: blue, mode: chat, max_tokens: 4096}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->deployments[0].id, "blue");
  EXPECT_TRUE(r->warnings.empty()) << "model_info is free-form";

  EXPECT_EQ(error_of("model_list:\n"
                     "  - model_name: m\n"
                     "    litellm_params: {model: mock/a}\n"
                     "    model_info: {id: blue}\n"
                     "  - model_name: m\n"
                     "    litellm_params: {model: mock/b}\n"
                     "    model_info: {id: blue}\n"),
            "test.yaml:5: deployment id 'blue' is already used by the deployment on line 2");
}

TEST(GatewayConfig, MissingEnvironmentVariableNamesItAndTheLine) {
  ScopedEnv master("LITELLM_MASTER_KEY", "sk-x");
  ScopedEnv a("VLLM_A_URL", "http://127.0.0.1:8001/v1");
  ScopedEnv b("VLLM_B_URL", std::nullopt);
  Result<GatewayConfig> r = load_config_file(kFixture);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, kFixture +
                                   ":16: environment variable VLLM_B_URL is not set (needed by "
                                   "model_list[1].litellm_params.api_base)");
}

TEST(GatewayConfig, EnvironmentReferencesWorkForEveryScalarKind) {
  ScopedEnv key("ONDOL_TEST_KEY", "sk-upstream");
  ScopedEnv timeout("ONDOL_TEST_TIMEOUT", "45");
  ScopedEnv verify("ONDOL_TEST_VERIFY", "false");
  ScopedEnv route("ONDOL_TEST_ROUTE", "/ready");
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params:\n"
      "      model: openai/gpt-4o\n"
      "      api_key: os.environ/ONDOL_TEST_KEY\n"
      "      timeout: os.environ/ONDOL_TEST_TIMEOUT\n"
      "      ssl_verify: os.environ/ONDOL_TEST_VERIFY\n"
      "general_settings:\n"
      "  public_routes: [os.environ/ONDOL_TEST_ROUTE]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->deployments[0].api_key, "sk-upstream");
  EXPECT_DOUBLE_EQ(r->deployments[0].timeout_s, 45);
  EXPECT_FALSE(r->deployments[0].ssl_verify);
  EXPECT_EQ(r->public_routes, std::vector<std::string>{"/ready"});
}

TEST(GatewayConfig, EnvironmentVariablesSectionGivesDefaultsTheEnvironmentOverrides) {
  ScopedEnv unset("ONDOL_TEST_UNSET_URL", std::nullopt);
  ScopedEnv set("ONDOL_TEST_SET_KEY", "from-env");
  Result<GatewayConfig> r = parse(
      "environment_variables:\n"
      "  ONDOL_TEST_UNSET_URL: http://10.0.0.5:8000/v1\n"
      "  ONDOL_TEST_SET_KEY: from-file\n"
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params:\n"
      "      model: hosted_vllm/x\n"
      "      api_base: os.environ/ONDOL_TEST_UNSET_URL\n"
      "      api_key: os.environ/ONDOL_TEST_SET_KEY\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->deployments[0].api_base, "http://10.0.0.5:8000/v1");
  EXPECT_EQ(r->deployments[0].api_key, "from-env");
  EXPECT_EQ(std::getenv("ONDOL_TEST_UNSET_URL"), nullptr) << "the process environment is untouched";
}

TEST(GatewayConfig, UnknownKeysWarnWithLineAndPathButLoad) {
  Result<GatewayConfig> r = parse(std::string(kOneMock) +
                                  "      frobnicate: 1\n"     // line 5
                                  "    extra_entry_key: 2\n"  // line 6
                                  "router_settings:\n"
                                  "  redis_host: localhost\n"  // known, silent
                                  "  foo: bar\n"               // line 9
                                  "litellm_settings:\n"
                                  "  set_verbose: true\n"
                                  "  cache: true\n"
                                  "  wat: 1\n"  // line 13
                                  "general_settings:\n"
                                  "  database_url: postgres://x\n"
                                  "  disable_spend_logs: true\n"
                                  "  bogus: 1\n"           // line 17
                                  "top_level_typo: 1\n");  // line 18
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->warnings,
            (std::vector<std::string>{
                "test.yaml:5: unknown key 'model_list[0].litellm_params.frobnicate' ignored",
                "test.yaml:6: unknown key 'model_list[0].extra_entry_key' ignored",
                "test.yaml:9: unknown key 'router_settings.foo' ignored",
                "test.yaml:13: unknown key 'litellm_settings.wat' ignored",
                "test.yaml:17: unknown key 'general_settings.bogus' ignored",
                "test.yaml:18: unknown key 'top_level_typo' ignored",
            }));
}

TEST(GatewayConfig, CommonLiteLLMKeysLoadSilently) {
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params:\n"
      "      model: azure_ai/gpt\n"
      "      api_base: https://example.invalid/v1\n"
      "      api_version: '2024-02-01'\n"
      "      max_retries: 3\n"
      "      organization: org-1\n"
      "      rpm: 10\n"
      "      tpm: 1000\n"
      "      order: 2\n"
      "      ssl_verify: false\n"
      "      input_cost_per_token: 0.5\n"
      "router_settings:\n"
      "  redis_host: r\n"
      "  redis_port: 6379\n"
      "  redis_password: p\n"
      "  redis_url: redis://r\n"
      "  enable_pre_call_checks: true\n"
      "  model_group_alias: {gpt-4: m}\n"
      "  timeout: 30\n"
      "  retry_after: 5\n"
      "  cooldown_time: 10\n"
      "litellm_settings:\n"
      "  set_verbose: false\n"
      "  json_logs: true\n"
      "  cache: true\n"
      "  cache_params: {type: redis}\n"
      "  success_callback: [langfuse]\n"
      "  failure_callback: [langfuse]\n"
      "  default_fallbacks: [m]\n"
      "  context_window_fallbacks: [{m: [m]}]\n"
      "  drop_params: true\n"
      "  request_timeout: 100\n"
      "  num_retries: 1\n"
      "  callbacks: custom_callbacks.handler\n"
      "  telemetry: false\n"
      "general_settings:\n"
      "  master_key: sk-1234\n"
      "  public_routes: ['LiteLLMRoutes.public_routes', /health]\n"
      "  database_url: postgresql://u:p@h/db\n"
      "  disable_spend_logs: true\n"
      "  alerting: [slack]\n"
      "  store_model_in_db: true\n"
      "  proxy_batch_write_at: 60\n"
      "  global_max_parallel_requests: 100\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0],
            "test.yaml:40: general_settings.public_routes: 'LiteLLMRoutes.public_routes' is not "
            "a path; ignored");
  EXPECT_EQ(r->public_routes, std::vector<std::string>{"/health"});
  EXPECT_EQ(r->callbacks, std::vector<std::string>{"custom_callbacks.handler"});
  EXPECT_DOUBLE_EQ(r->request_timeout_s, 30) << "router_settings.timeout wins";
  EXPECT_EQ(r->router.num_retries, 1) << "only litellm_settings gives num_retries";
  const DeploymentConfig& d = r->deployments[0];
  EXPECT_EQ(d.provider, "azure_ai");
  EXPECT_EQ(d.tpm, 1000);
  EXPECT_EQ(d.order, 2);
  EXPECT_FALSE(d.ssl_verify);
  EXPECT_DOUBLE_EQ(d.input_cost_per_token, 0.5);
  EXPECT_DOUBLE_EQ(d.timeout_s, 30);
}

TEST(GatewayConfig, RouterNumRetriesWinsOverLiteLLMSettings) {
  Result<GatewayConfig> both = parse(std::string(kOneMock) +
                                     "router_settings: {num_retries: 4}\n"
                                     "litellm_settings: {num_retries: 1}\n");
  ASSERT_TRUE(both.ok()) << both.error().message;
  EXPECT_EQ(both->router.num_retries, 4);
  Result<GatewayConfig> neither = parse(kOneMock);
  ASSERT_TRUE(neither.ok());
  EXPECT_EQ(neither->router.num_retries, 0);
  EXPECT_EQ(neither->router.allowed_fails, 3);
  EXPECT_DOUBLE_EQ(neither->router.cooldown_time_s, 5);
  EXPECT_DOUBLE_EQ(neither->request_timeout_s, 600);
  EXPECT_DOUBLE_EQ(neither->deployments[0].timeout_s, 600);
  EXPECT_TRUE(neither->master_key.empty());
}

TEST(GatewayConfig, WrongTypesAreErrorsWithTheirLine) {
  EXPECT_EQ(error_of(std::string(kOneMock) + "      timeout: abc\n"),
            "test.yaml:5: model_list[0].litellm_params.timeout must be a number, got 'abc'");
  EXPECT_EQ(error_of(std::string(kOneMock) + "      weight: [1, 2]\n"),
            "test.yaml:5: model_list[0].litellm_params.weight must be an integer, got a list");
  EXPECT_EQ(error_of(std::string(kOneMock) + "      rpm: 1.5\n"),
            "test.yaml:5: model_list[0].litellm_params.rpm must be an integer, got '1.5'");
  EXPECT_EQ(error_of(std::string(kOneMock) + "      ssl_verify: {a: 1}\n"),
            "test.yaml:5: model_list[0].litellm_params.ssl_verify must be a string, got a "
            "mapping");
  EXPECT_EQ(error_of(std::string(kOneMock) + "litellm_settings:\n  drop_params: maybe\n"),
            "test.yaml:6: litellm_settings.drop_params must be true or false, got 'maybe'");
  EXPECT_EQ(error_of(std::string(kOneMock) + "router_settings: [1]\n"),
            "test.yaml:5: router_settings must be a mapping, got a list");
  EXPECT_EQ(error_of("model_list:\n"
                     "  - model_name: m\n"
                     "    litellm_params: mock/m\n"),
            "test.yaml:3: model_list[0].litellm_params must be a mapping, got 'mock/m'");
  EXPECT_EQ(error_of("model_list: {model_name: m}\n"),
            "test.yaml:1: model_list must be a list of deployments, got a mapping");
  EXPECT_EQ(error_of("- a\n- b\n"), "test.yaml:1: the configuration must be a mapping, got a list");
  EXPECT_EQ(error_of(std::string(kOneMock) + "general_settings:\n  public_routes: /health\n"),
            "test.yaml:6: general_settings.public_routes must be a list of strings, got "
            "'/health'");
}

TEST(GatewayConfig, NumbersMayBeQuotedAsInLiteLLM) {
  Result<GatewayConfig> r = parse(std::string(kOneMock) +
                                  "      timeout: \"120\"\n"
                                  "      rpm: '10_000'\n"
                                  "      weight: '+3'\n"
                                  "router_settings: {cooldown_time: '2.5', num_retries: \"2\"}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_DOUBLE_EQ(r->deployments[0].timeout_s, 120);
  EXPECT_EQ(r->deployments[0].rpm, 10000);
  EXPECT_EQ(r->deployments[0].weight, 3);
  EXPECT_DOUBLE_EQ(r->router.cooldown_time_s, 2.5);
  EXPECT_EQ(r->router.num_retries, 2);
}

TEST(GatewayConfig, EmptyValuesMeanTheDefault) {
  Result<GatewayConfig> r = parse(std::string(kOneMock) +
                                  "      timeout:\n"
                                  "      api_key: ~\n"
                                  "router_settings:\n"
                                  "litellm_settings:\n"
                                  "  request_timeout: 30\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_DOUBLE_EQ(r->deployments[0].timeout_s, 30);
  EXPECT_TRUE(r->deployments[0].api_key.empty());
  EXPECT_TRUE(r->warnings.empty());
}

TEST(GatewayConfig, MissingRequiredKeysAreErrors) {
  EXPECT_EQ(error_of("router_settings: {num_retries: 1}\n"), "test.yaml:1: model_list is required");
  EXPECT_EQ(error_of("model_list: []\n"),
            "test.yaml:1: model_list is empty: at least one deployment is needed");
  EXPECT_EQ(error_of("model_list:\n  - litellm_params: {model: mock/m}\n"),
            "test.yaml:2: model_list[0].model_name is required");
  EXPECT_EQ(error_of("model_list:\n  - model_name: m\n"),
            "test.yaml:2: model_list[0].litellm_params is required");
  EXPECT_EQ(error_of("model_list:\n  - model_name: m\n    litellm_params: {api_key: x}\n"),
            "test.yaml:3: model_list[0].litellm_params.model is required");
  EXPECT_EQ(error_of(""), "test.yaml:1: the configuration is empty: model_list is required");
  EXPECT_EQ(error_of("# only a comment\n"),
            "test.yaml:1: the configuration is empty: model_list is required");
}

TEST(GatewayConfig, BadValuesAreErrors) {
  EXPECT_EQ(error_of(std::string(kOneMock) + "      timeout: -1\n"),
            "test.yaml:5: model_list[0].litellm_params.timeout must be >= 0, got -1");
  EXPECT_EQ(error_of(std::string(kOneMock) + "      weight: -2\n"),
            "test.yaml:5: model_list[0].litellm_params.weight must be between 0 and 2147483647, "
            "got -2");
  EXPECT_EQ(error_of(std::string(kOneMock) + "      max_parallel_requests: 0\n"),
            "test.yaml:5: model_list[0].litellm_params.max_parallel_requests must be between 1 "
            "and 2147483647, got 0");
  EXPECT_EQ(error_of(std::string(kOneMock) + "litellm_settings: {request_timeout: 0}\n"),
            "test.yaml:5: litellm_settings.request_timeout must be > 0, got 0");
  EXPECT_EQ(error_of(std::string(kOneMock) + "router_settings: {cooldown_time: -5}\n"),
            "test.yaml:5: router_settings.cooldown_time must be >= 0, got -5");
  EXPECT_EQ(error_of(std::string(kOneMock) + "      rpm: 99999999999\n"),
            "test.yaml:5: model_list[0].litellm_params.rpm must be between 0 and 2147483647, got "
            "99999999999");
  EXPECT_EQ(error_of(std::string(kOneMock) + "      timeout: .nan\n"),
            "test.yaml:5: model_list[0].litellm_params.timeout must be a number, got '.nan'");
  EXPECT_EQ(error_of(std::string(kOneMock) + "general_settings: {master_key: ''}\n"),
            "test.yaml:5: general_settings.master_key is empty; remove it to run without "
            "authentication");
}

TEST(GatewayConfig, RoutingStrategies) {
  const std::pair<const char*, RoutingStrategy> cases[] = {
      {"simple-shuffle", RoutingStrategy::SimpleShuffle},
      {"least-busy", RoutingStrategy::LeastBusy},
      {"latency-based-routing", RoutingStrategy::LatencyBased},
  };
  for (const auto& [name, strategy] : cases) {
    Result<GatewayConfig> r =
        parse(std::string(kOneMock) + "router_settings: {routing_strategy: " + name + "}\n");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->router.routing_strategy, strategy);
    EXPECT_STREQ(to_string(strategy), name);
    EXPECT_TRUE(r->warnings.empty());
  }
  for (const char* approximated :
       {"usage-based-routing", "usage-based-routing-v2", "cost-based-routing"}) {
    Result<GatewayConfig> r = parse(std::string(kOneMock) +
                                    "router_settings: {routing_strategy: " + approximated + "}\n");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->router.routing_strategy, RoutingStrategy::SimpleShuffle);
    ASSERT_EQ(r->warnings.size(), 1u);
    EXPECT_EQ(r->warnings[0], std::string("test.yaml:5: routing_strategy '") + approximated +
                                  "' is not implemented; using 'simple-shuffle'");
  }
  EXPECT_EQ(error_of(std::string(kOneMock) + "router_settings:\n  routing_strategy: fastest\n"),
            "test.yaml:6: router_settings.routing_strategy must be simple-shuffle, least-busy or "
            "latency-based-routing, got 'fastest'");
}

TEST(GatewayConfig, FallbacksMustNameConfiguredModels) {
  const std::string two =
      "model_list:\n"
      "  - model_name: a\n"
      "    litellm_params: {model: mock/a}\n"
      "  - model_name: b\n"
      "    litellm_params: {model: mock/b}\n";
  EXPECT_EQ(error_of(two + "router_settings:\n  fallbacks:\n    - a: [b, c]\n"),
            "test.yaml:8: fallbacks: 'c' is not a model_name in model_list (known: a, b)");
  EXPECT_EQ(error_of(two + "router_settings:\n  fallbacks:\n    - z: [a]\n"),
            "test.yaml:8: fallbacks: 'z' is not a model_name in model_list (known: a, b)");
  EXPECT_EQ(error_of(two + "router_settings:\n  fallbacks:\n    - a: [a]\n"),
            "test.yaml:8: fallbacks: 'a' falls back to itself");
  EXPECT_EQ(error_of(two + "router_settings:\n  fallbacks:\n    - a: [b]\n    - a: [b]\n"),
            "test.yaml:9: fallbacks for 'a' are given twice");
  EXPECT_EQ(error_of(two + "router_settings:\n  fallbacks:\n    - a: b\n"),
            "test.yaml:8: router_settings.fallbacks[0].a must be a list of strings, got 'b'");
  EXPECT_EQ(error_of(two + "router_settings:\n  fallbacks: {a: [b]}\n"),
            "test.yaml:7: router_settings.fallbacks must be a list like [{model: [fallback, "
            "...]}], got a mapping");
  EXPECT_EQ(error_of(two + "router_settings:\n  fallbacks:\n    - a: []\n"),
            "test.yaml:8: router_settings.fallbacks[0].a names no fallback model");

  // Several keys in one entry are several rules; router_settings wins over litellm_settings.
  Result<GatewayConfig> r = parse(two +
                                  "router_settings:\n  fallbacks: [{a: [b], b: [a]}]\n"
                                  "litellm_settings:\n  fallbacks: [{a: [b]}]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->router.fallbacks.size(), 2u);
  EXPECT_EQ(r->router.fallbacks[1].model_name, "b");
  EXPECT_EQ(r->router.fallbacks[1].fallbacks, std::vector<std::string>{"a"});

  Result<GatewayConfig> from_litellm = parse(two + "litellm_settings:\n  fallbacks: [{b: [a]}]\n");
  ASSERT_TRUE(from_litellm.ok()) << from_litellm.error().message;
  ASSERT_EQ(from_litellm->router.fallbacks.size(), 1u);
  EXPECT_EQ(from_litellm->router.fallbacks[0].model_name, "b");
}

TEST(GatewayConfig, YamlSyntaxErrorsNameTheLine) {
  const std::string bad =
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params:\n"
      "      model: [mock/m\n"
      "router_settings: {}\n";
  const std::string message = error_of(bad);
  EXPECT_TRUE(message.starts_with("test.yaml:5: YAML syntax error")) << message;

  const std::string indent = error_of("model_list:\n  - model_name: m\n bad: 1\n");
  EXPECT_TRUE(indent.starts_with("test.yaml:3: YAML syntax error")) << indent;
  const std::string anchor = error_of("model_list: *nowhere\n");
  EXPECT_TRUE(anchor.starts_with("test.yaml:1: YAML syntax error")) << anchor;
  // yaml-cpp 0.7 reads this as an empty document (and its LoadAll would loop forever on it).
  EXPECT_EQ(error_of("# a comment\n, stray comma\nmodel_list: []\n"),
            "test.yaml:2: YAML syntax error: no document could be read from here");
}

TEST(GatewayConfig, MockProviderParsesItsParameters) {
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - model_name: fake\n"
      "    litellm_params:\n"
      "      model: mock/tiny-model\n"
      "      mock_response_latency_ms: 50\n"
      "      mock_chunk_delay_ms: 2.5\n"
      "      mock_tokens_per_chunk: 4\n"
      "      mock_output_tokens: 128\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const DeploymentConfig& d = r->deployments[0];
  EXPECT_EQ(d.kind, ProviderKind::Mock);
  EXPECT_EQ(d.provider, "mock");
  EXPECT_EQ(d.upstream_model, "tiny-model");
  EXPECT_TRUE(d.api_base.empty());
  EXPECT_DOUBLE_EQ(d.mock.response_latency_ms, 50);
  EXPECT_DOUBLE_EQ(d.mock.chunk_delay_ms, 2.5);
  EXPECT_EQ(d.mock.tokens_per_chunk, 4);
  EXPECT_EQ(d.mock.output_tokens, 128);
  EXPECT_TRUE(r->warnings.empty());

  Result<GatewayConfig> defaults = parse(kOneMock);
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->deployments[0].mock.tokens_per_chunk, 1);
  EXPECT_EQ(defaults->deployments[0].mock.output_tokens, 16);

  EXPECT_EQ(error_of(std::string(kOneMock) + "      mock_tokens_per_chunk: 0\n"),
            "test.yaml:5: model_list[0].litellm_params.mock_tokens_per_chunk must be between 1 "
            "and 2147483647, got 0");
}

TEST(GatewayConfig, MockKeysOnOtherProvidersAndApiBaseOnMockWarn) {
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params:\n"
      "      model: openai/gpt-4o\n"
      "      mock_output_tokens: 3\n"
      "  - model_name: n\n"
      "    litellm_params:\n"
      "      model: mock/n\n"
      "      api_base: http://127.0.0.1:1/v1\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->warnings,
            (std::vector<std::string>{
                "test.yaml:5: model_list[0].litellm_params.mock_output_tokens is used only by the "
                "mock provider; ignored for provider 'openai'",
                "test.yaml:9: model_list[1].litellm_params.api_base is not used by the mock "
                "provider; ignored"}));
  EXPECT_EQ(r->deployments[0].mock.output_tokens, 16);
  EXPECT_TRUE(r->deployments[1].api_base.empty());
}

TEST(GatewayConfig, ProvidersAndApiBase) {
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - model_name: plain\n"
      "    litellm_params: {model: gpt-4o-mini}\n"
      "  - model_name: custom\n"
      "    litellm_params:\n"
      "      model: hosted_vllm/org/m\n"
      "      custom_llm_provider: hosted_vllm\n"
      "      api_base: HTTPS://Host.example:8443//\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->deployments[0].provider, "openai");
  EXPECT_EQ(r->deployments[0].upstream_model, "gpt-4o-mini");
  EXPECT_EQ(r->deployments[0].api_base, "https://api.openai.com/v1");
  EXPECT_EQ(r->deployments[1].provider, "hosted_vllm");
  EXPECT_EQ(r->deployments[1].upstream_model, "org/m");
  EXPECT_EQ(r->deployments[1].api_base, "https://Host.example:8443");

  EXPECT_EQ(error_of("model_list:\n  - model_name: m\n    litellm_params:\n"
                     "      model: hosted_vllm/llama\n"),
            "test.yaml:4: model_list[0].litellm_params.api_base is required for provider "
            "'hosted_vllm'");
  EXPECT_EQ(error_of("model_list:\n  - model_name: m\n    litellm_params:\n"
                     "      model: hosted_vllm/llama\n      api_base: 127.0.0.1:8000/v1\n"),
            "test.yaml:5: model_list[0].litellm_params.api_base must be an http:// or https:// "
            "URL, got '127.0.0.1:8000/v1'");
  EXPECT_EQ(error_of("model_list:\n  - model_name: m\n    litellm_params:\n"
                     "      model: hosted_vllm/llama\n      api_base: http://h:99999/v1\n"),
            "test.yaml:5: model_list[0].litellm_params.api_base has an invalid port, got "
            "'http://h:99999/v1'");
  EXPECT_EQ(error_of("model_list:\n  - model_name: m\n    litellm_params:\n      model: /x\n"),
            "test.yaml:4: model_list[0].litellm_params.model must look like PROVIDER/MODEL (e.g. "
            "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct), got '/x'");
}

TEST(GatewayConfig, RpmAndTpmBesideLitellmParams) {
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params: {model: mock/a, rpm: 5}\n"
      "    rpm: 50\n"
      "    tpm: 7000\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->deployments[0].rpm, 5) << "litellm_params wins";
  EXPECT_EQ(r->deployments[0].tpm, 7000);
  EXPECT_TRUE(r->warnings.empty());
}

TEST(GatewayConfig, SslVerifyMayNameACaBundle) {
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params:\n"
      "      model: openai/x\n"
      "      ssl_verify: /etc/ssl/private-ca.pem\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->deployments[0].ssl_verify);
  EXPECT_EQ(r->deployments[0].ssl_ca_file, "/etc/ssl/private-ca.pem");
}

TEST(GatewayConfig, MergeKeysAndDuplicateKeys) {
  Result<GatewayConfig> r = parse(
      "x-defaults: &vllm\n"
      "  api_base: http://10.0.0.1:8000/v1\n"
      "  timeout: 77\n"
      "  weight: 5\n"
      "model_list:\n"
      "  - model_name: m\n"
      "    litellm_params:\n"
      "      <<: *vllm\n"
      "      model: hosted_vllm/m\n"
      "      weight: 2\n"
      "      weight: 3\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const DeploymentConfig& d = r->deployments[0];
  EXPECT_EQ(d.api_base, "http://10.0.0.1:8000/v1");
  EXPECT_DOUBLE_EQ(d.timeout_s, 77);
  EXPECT_EQ(d.weight, 3) << "explicit keys win over merged ones; the last duplicate wins";
  EXPECT_EQ(r->warnings,
            (std::vector<std::string>{
                "test.yaml:1: unknown key 'x-defaults' ignored",
                "test.yaml:11: duplicate key 'model_list[0].litellm_params.weight' (first on "
                "line 10); the last one wins"}));
}

TEST(GatewayConfig, NotAppliedLiteLLMParamsWarn) {
  Result<GatewayConfig> r = parse(std::string(kOneMock) + "      temperature: 0.2\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0],
            "test.yaml:5: model_list[0].litellm_params.temperature is accepted but not applied: "
            "ondol does not add it to upstream requests");
}

TEST(GatewayConfig, IncludeIsRefused) {
  EXPECT_EQ(error_of(std::string("include:\n  - models.yaml\n") + kOneMock),
            "test.yaml:2: include is not supported: merge the included files into this one");
}

TEST(GatewayConfig, StreamTimeoutFromRouterSettings) {
  Result<GatewayConfig> r = parse(std::string(kOneMock) +
                                  "      timeout: 90\n"
                                  "router_settings: {stream_timeout: 12}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_DOUBLE_EQ(r->deployments[0].timeout_s, 90);
  EXPECT_DOUBLE_EQ(r->deployments[0].stream_timeout_s, 12);
}

TEST(GatewayConfig, ModelNamesInFirstAppearanceOrder) {
  Result<GatewayConfig> r = parse(
      "model_list:\n"
      "  - {model_name: b, litellm_params: {model: mock/1}}\n"
      "  - {model_name: a, litellm_params: {model: mock/2}}\n"
      "  - {model_name: b, litellm_params: {model: mock/3}}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model_names(), (std::vector<std::string>{"b", "a"}));
}

TEST(GatewayConfig, AllZeroWeightsInAGroupWarn) {
  Result<GatewayConfig> r = parse(std::string(kOneMock) + "      weight: 0\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->warnings,
            std::vector<std::string>{"test.yaml:2: every deployment of model 'm' has weight 0"});
}

TEST(LoadConfigFile, MissingFileIsAClearError) {
  const std::string path = "/nonexistent-dir-for-ondol-tests/config.yaml";
  Result<GatewayConfig> r = load_config_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "cannot read config file '/nonexistent-dir-for-ondol-tests/config.yaml': No such file "
            "or directory");

  Result<GatewayConfig> dir = load_config_file(std::filesystem::temp_directory_path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("is a directory"), std::string::npos) << dir.error().message;
}

TEST(LoadConfigFile, ErrorsNameThePathGiven) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("ondol-config-test-" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << kOneMock << "      timeout: soon\n";
  }
  Result<GatewayConfig> r = load_config_file(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, path.string() +
                                   ":5: model_list[0].litellm_params.timeout must be a number, "
                                   "got 'soon'");
}

}  // namespace
}  // namespace ondol::gateway

namespace ondol::gateway {
namespace {

TEST(GatewayConfig, LocalEngineSettingsIncludingMemorySizesDtypeAndPrefixCaching) {
  const std::string yaml = R"(model_list:
  - model_name: m
    litellm_params:
      model: local/m.gguf
      kv_cache_memory: 25%
      block_size: 32
      kv_cache_dtype: int8
      enable_prefix_caching: false
  - model_name: n
    litellm_params:
      model: local/n.gguf
      kv_cache_memory: 512MiB
  - model_name: o
    litellm_params:
      model: local/o.gguf
      kv_cache_memory: 1000000
)";
  auto r = parse_config(yaml, "test.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const LocalEngineParams& m = r->deployments[0].local;
  EXPECT_DOUBLE_EQ(m.kv_cache_memory.fraction, 0.25);
  EXPECT_EQ(m.block_size, 32);
  EXPECT_EQ(m.kv_cache_dtype, "int8");
  EXPECT_EQ(r->deployments[1].local.kv_cache_dtype, "");  // the engine's default
  EXPECT_FALSE(m.enable_prefix_caching);
  EXPECT_EQ(r->deployments[1].local.kv_cache_memory.bytes, int64_t{512} << 20);
  EXPECT_TRUE(r->deployments[1].local.enable_prefix_caching);
  EXPECT_EQ(r->deployments[2].local.kv_cache_memory.bytes, 1'000'000);

  auto bad = parse_config(R"(model_list:
  - model_name: m
    litellm_params:
      model: local/m.gguf
      kv_cache_memory: lots
)", "test.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("test.yaml:5: model_list[0].litellm_params.kv_cache_memory: 'lots' is not a memory size", 0), 0u)
      << bad.error().message;

  auto bad_dtype = parse_config(R"(model_list:
  - model_name: m
    litellm_params:
      model: local/m.gguf
      kv_cache_dtype: fp8
)",
                                "test.yaml");
  ASSERT_FALSE(bad_dtype.ok());
  EXPECT_EQ(bad_dtype.error().message,
            "test.yaml:5: model_list[0].litellm_params.kv_cache_dtype: 'fp8' is not one of auto, "
            "float16, float32, int8");
}

TEST(GatewayConfig, LimitsAndCacheKeys) {
  Result<GatewayConfig> r = parse(std::string(kOneMock) +
                                  "router_settings:\n"
                                  "  redis_host: 10.0.0.9\n"
                                  "  redis_port: 6380\n"
                                  "  redis_password: pw\n"
                                  "  redis_timeout: 0.25\n"
                                  "  rate_limit_fail_mode: closed\n"
                                  "litellm_settings:\n"
                                  "  cache: true\n"
                                  "  cache_params: {type: redis, ttl: 30, mode: default_off, "
                                  "namespace: 'ns:'}\n"
                                  "general_settings:\n"
                                  "  global_max_parallel_requests: 8\n"
                                  "  max_queue_size: 4\n"
                                  "  queue_timeout: 2.5\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->warnings.empty());
  EXPECT_EQ(r->limits.redis.host, "10.0.0.9");
  EXPECT_EQ(r->limits.redis.port, 6380);
  EXPECT_EQ(r->limits.redis.password, "pw");
  EXPECT_DOUBLE_EQ(r->limits.redis_timeout_s, 0.25);
  EXPECT_TRUE(r->limits.fail_closed);
  EXPECT_EQ(r->limits.global_max_parallel_requests, 8);
  EXPECT_EQ(r->limits.max_queue, 4);
  EXPECT_DOUBLE_EQ(r->limits.queue_timeout_s, 2.5);
  EXPECT_TRUE(r->cache.enabled);
  EXPECT_TRUE(r->cache.redis);
  EXPECT_DOUBLE_EQ(r->cache.ttl_s, 30);
  EXPECT_TRUE(r->cache.default_off);
  EXPECT_EQ(r->cache.namespace_, "ns:");

  Result<GatewayConfig> defaults = parse(kOneMock);
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->limits.redis.configured());
  EXPECT_FALSE(defaults->limits.fail_closed);
  EXPECT_FALSE(defaults->cache.enabled);
  EXPECT_FALSE(defaults->cache.redis);
}

TEST(GatewayConfig, LimitsAndCacheKeysAreValidated) {
  for (const char* bad : {"router_settings:\n  rate_limit_fail_mode: maybe\n",
                          "router_settings:\n  redis_url: http://r\n",
                          "router_settings:\n  redis_port: 70000\n",
                          "litellm_settings:\n  cache_params: {type: s3}\n",
                          "litellm_settings:\n  cache_params: {mode: sometimes}\n",
                          "general_settings:\n  queue_timeout: 0\n"}) {
    Result<GatewayConfig> r = parse(std::string(kOneMock) + bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(GatewayConfig, TenancySettingsAndTiers) {
  Result<GatewayConfig> r = parse(std::string(kOneMock) +
                                  "general_settings:\n"
                                  "  master_key: sk-1\n"
                                  "  database_url: postgresql://u@h/db\n"
                                  "  user_api_key_cache_ttl: 0.5\n"
                                  "  tiers:\n"
                                  "    free: {rpm: 10, tpm: 1000, tpd: 5000000000}\n"
                                  "    pro: {rpm_limit: 600, max_parallel_requests: 4}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->warnings.empty());
  EXPECT_EQ(r->tenancy.database_url, "postgresql://u@h/db");
  EXPECT_DOUBLE_EQ(r->tenancy.key_cache_ttl_s, 0.5);
  ASSERT_EQ(r->tenancy.tiers.size(), 2u);
  EXPECT_EQ(r->tenancy.tiers.at("free").rpm, 10);
  EXPECT_EQ(r->tenancy.tiers.at("free").tpd, 5000000000);  // beyond 32 bits
  EXPECT_FALSE(r->tenancy.tiers.at("free").max_parallel_requests);
  EXPECT_EQ(r->tenancy.tiers.at("pro").rpm, 600);
  EXPECT_EQ(r->tenancy.tiers.at("pro").max_parallel_requests, 4);

  Result<GatewayConfig> bad = parse(std::string(kOneMock) +
                                    "general_settings:\n"
                                    "  database_url: mysql://h/db\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("database_url must start with postgresql://"),
            std::string::npos);
  Result<GatewayConfig> bad_tier = parse(std::string(kOneMock) +
                                         "general_settings:\n"
                                         "  tiers:\n"
                                         "    free: {rpm: lots}\n");
  ASSERT_FALSE(bad_tier.ok());
  EXPECT_NE(bad_tier.error().message.find("test.yaml:7"), std::string::npos)
      << bad_tier.error().message;
}

}  // namespace
}  // namespace ondol::gateway
