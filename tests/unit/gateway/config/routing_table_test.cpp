// format_routing_table: shows the resolved routing and never a secret.
#include <string>

#include <gtest/gtest.h>

#include "gateway/config/config.h"

namespace ondol::gateway {
namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

GatewayConfig parse_or_die(const std::string& yaml) {
  Result<GatewayConfig> r = parse_config(yaml, "table.yaml");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : GatewayConfig{};
}

const char* const kConfig =
    "model_list:\n"
    "  - model_name: chat\n"
    "    litellm_params:\n"
    "      model: hosted_vllm/meta-llama/Llama-3.1-8B-Instruct\n"
    "      api_base: http://svc-user:pa55w0rd-in-url@10.0.0.7:8000/v1\n"
    "      api_key: sk-upstream-secret-9c1e\n"
    "      weight: 3\n"
    "      timeout: 20\n"
    "      stream_timeout: 5\n"
    "      rpm: 100\n"
    "  - model_name: chat\n"
    "    litellm_params:\n"
    "      model: hosted_vllm/canary\n"
    "      api_base: http://10.0.0.8:8000/v1\n"
    "      weight: 1\n"
    "      ssl_verify: false\n"
    "    model_info: {id: canary-1, input_cost_per_token: 0.000001}\n"
    "  - model_name: fake\n"
    "    litellm_params:\n"
    "      model: mock/tiny\n"
    "      mock_response_latency_ms: 40\n"
    "      mock_output_tokens: 8\n"
    "router_settings:\n"
    "  routing_strategy: latency-based-routing\n"
    "  num_retries: 3\n"
    "  fallbacks: [{chat: [fake]}]\n"
    "general_settings:\n"
    "  master_key: sk-master-secret-41d0\n"
    "  public_routes: [/health]\n";

TEST(RoutingTable, NeverPrintsSecrets) {
  const std::string table = format_routing_table(parse_or_die(kConfig));
  EXPECT_FALSE(contains(table, "sk-upstream-secret-9c1e")) << table;
  EXPECT_FALSE(contains(table, "sk-master-secret-41d0")) << table;
  EXPECT_FALSE(contains(table, "pa55w0rd-in-url")) << table;
  EXPECT_FALSE(contains(table, "svc-user")) << table;
  EXPECT_TRUE(contains(table, "http://***@10.0.0.7:8000/v1")) << table;
  EXPECT_TRUE(contains(table, "auth: master_key ***, public routes: /health")) << table;
}

TEST(RoutingTable, ShowsTheResolvedRouting) {
  const GatewayConfig config = parse_or_die(kConfig);
  const std::string table = format_routing_table(config);
  EXPECT_TRUE(contains(table, "config: table.yaml\n")) << table;
  EXPECT_TRUE(contains(table,
                       "routing: latency-based-routing, num_retries 3, allowed_fails 3, "
                       "cooldown_time 5s, request_timeout 600s\n"))
      << table;
  EXPECT_TRUE(contains(table, "deployments (3):")) << table;
  EXPECT_TRUE(contains(table, "meta-llama/Llama-3.1-8B-Instruct")) << table;
  EXPECT_TRUE(contains(table, "3 (75%)")) << table;
  EXPECT_TRUE(contains(table, "1 (25%)")) << table;
  EXPECT_TRUE(contains(table, "canary-1")) << table;
  EXPECT_TRUE(contains(table, "(in-process mock)")) << table;
  EXPECT_TRUE(contains(table, "latency 40 ms")) << table;
  EXPECT_TRUE(contains(table, "8 output tokens")) << table;
  EXPECT_TRUE(contains(table, "tls canary-1: verify OFF")) << table;
  EXPECT_TRUE(contains(table, "fallbacks:\n  chat -> fake\n")) << table;

  // The row of the first deployment: the key shows as ***, the timeouts as resolved.
  const std::string& id = config.deployments[0].id;
  const size_t id_at = table.find(id);
  ASSERT_NE(id_at, std::string::npos) << table;
  const size_t row = table.rfind('\n', id_at) + 1;
  const std::string line = table.substr(row, table.find('\n', row) - row);
  EXPECT_TRUE(contains(line, "***")) << line;
  EXPECT_TRUE(contains(line, "20s")) << line;
  EXPECT_TRUE(contains(line, "5s")) << line;
  EXPECT_TRUE(contains(line, "100")) << line;

  // Every row has the header's column layout: "API KEY" sits above the key column.
  const size_t header = table.find("MODEL");
  ASSERT_NE(header, std::string::npos);
  const size_t header_line_start = table.rfind('\n', header) + 1;
  const size_t key_column = table.find("API KEY", header) - header_line_start;
  EXPECT_EQ(line.substr(key_column, 3), "***") << table;
}

TEST(RoutingTable, WithoutMasterKeySaysAuthIsOff) {
  const std::string table = format_routing_table(
      parse_or_die("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"));
  EXPECT_TRUE(contains(table, "auth: none (no master_key)")) << table;
  EXPECT_TRUE(contains(table, "fallbacks: none")) << table;
}

}  // namespace
}  // namespace ondol::gateway
