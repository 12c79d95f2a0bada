// The gateway: the HTTP handler behind `ondol serve`. It owns the current route table (swapped
// whole on reload), authenticates, and sends each API request through the proxy.
#pragma once

#include <atomic>
#include <memory>
#include <random>
#include <string>

#include "common/metrics/registry.h"
#include "gateway/body_log.h"
#include "gateway/gateway_metrics.h"
#include "gateway/principal.h"
#include "gateway/router/route_table.h"
#include "http/exchange.h"

namespace ondol::tenants {
class Tenancy;
}

namespace ondol::gateway {

class Policies;  // policies.h: rate limits, admission, response cache

enum class ServingState { Starting, Serving, Draining };

struct GatewayOptions {
  std::string config_path;        // a config file (reloadable)
  std::string config_text;        // else this YAML (e.g. from --model); else the embedded default
  std::string master_key;         // from the command line or environment; wins over the file
  BodyLogOptions body_log;        // request/response bodies in the log (off by default)
};

class Gateway {
 public:
  Gateway(metrics::Registry& registry, GatewayOptions options);
  ~Gateway();

  // Loads the config (file or embedded default) for the first time.
  Status load();
  // Loads the config file again; on error the current table keeps serving.
  Status reload();

  boost::asio::awaitable<void> handle(http::Exchange& ex);

  void set_state(ServingState s) { state_.store(s); }
  ServingState state() const { return state_.load(); }
  // The current route table. Each I/O thread keeps its own reference and refreshes it when the
  // version moves, so the hot path takes no lock and touches no shared reference count.
  const std::shared_ptr<const RouteTable>& table() const;
  // The command line's key, else the config's. Empty: no auth.
  const std::string& master_key() const;
  // Keys, users, teams and the spend log; null without a master key.
  tenants::Tenancy* tenancy() const { return tenancy_.get(); }

 private:
  boost::asio::awaitable<void> handle_models(http::Exchange& ex);
  boost::asio::awaitable<void> handle_tokenize(http::Exchange& ex, bool tokenize);
  boost::asio::awaitable<void> handle_health(http::Exchange& ex, bool deep);
  boost::asio::awaitable<void> handle_ready(http::Exchange& ex);
  boost::asio::awaitable<void> handle_reload(http::Exchange& ex);
  struct AuthResult;
  // The caller's Principal: master key, a virtual key (looked up in the tenant store), or an
  // error to answer (401 unknown or expired, 403 blocked, 503 store unavailable).
  boost::asio::awaitable<AuthResult> authenticate(const http::Exchange& ex);
  Status open_tenancy(const GatewayConfig& config);
  void log_bodies(const RecordingExchange& ex, std::string_view request_id) const;
  bool is_public(std::string_view path) const;
  Status install(std::shared_ptr<GatewayConfig> config);

  metrics::Registry& registry_;
  GatewayMetrics metrics_;
  GatewayOptions options_;
  mutable std::mutex table_mu_;
  std::shared_ptr<const RouteTable> table_;   // guarded by table_mu_
  std::atomic<uint64_t> table_version_{0};
  std::atomic<ServingState> state_{ServingState::Starting};
  std::mutex reload_mu_;
  std::unique_ptr<tenants::Tenancy> tenancy_;  // set by load() when a master key is configured
  std::unique_ptr<Policies> policies_;         // set by the first load(); kept across reloads
  std::shared_ptr<const Principal> anonymous_ = std::make_shared<const Principal>();
  std::shared_ptr<const Principal> master_;    // the master key's principal (spend-logged)
};

// The config served when `ondol serve` gets no --config: one in-process mock model.
extern const char* const kEmbeddedDefaultConfig;

}  // namespace ondol::gateway
