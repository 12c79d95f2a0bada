// ondol: flags -> config -> components -> run. No logic lives here.
#include <utility>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "bench/cli.h"
#include "common/log.h"
#include "common/memory_size.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/weight_type.h"
#include "engine/model/dummy_model.h"
#include "engine/model/model_info.h"
#include "common/metrics/registry.h"
#include "gateway/config/config.h"
#include "gateway/gateway.h"
#include "gateway/mock/mock_upstream.h"
#include "http/server.h"
#include "openai/error.h"

namespace {

namespace asio = boost::asio;
using namespace ondol;

struct CommonFlags {
  std::string log_level = "info";
  std::string log_format = "json";
  std::string log_file;
  std::string log_max_bytes = "100MiB";
  int log_backups = 5;
};

void add_log_flags(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("--log-level", f.log_level, "debug, info, warn or error")
      ->capture_default_str();
  cmd->add_option("--log-format", f.log_format, "json (one object per line) or text")
      ->capture_default_str();
  cmd->add_option("--log-file", f.log_file, "Append logs to this file instead of stdout");
  cmd->add_option("--log-max-bytes", f.log_max_bytes,
                  "Rotate --log-file past this size (512KiB, 100MiB, ...; 0: never)")
      ->capture_default_str();
  cmd->add_option("--log-backups", f.log_backups, "Rotated log files kept (FILE.1 ... FILE.N)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
}

void add_server_flags(CLI::App* cmd, http::ServerOptions& s, uint16_t default_port) {
  s.port = default_port;
  cmd->add_option("--host", s.host, "Address to bind")->capture_default_str();
  cmd->add_option("--port", s.port, "Port to bind (0: any free port)")->capture_default_str();
  cmd->add_option("--io-threads", s.io_threads, "I/O threads (0: one per core)")
      ->capture_default_str();
}

void init_logging(const CommonFlags& f) {
  int64_t max_bytes = 0;
  if (auto size = parse_memory_size(f.log_max_bytes); size.ok() && size->fraction == 0) {
    max_bytes = size->bytes;
  } else {
    std::fprintf(stderr, "ondol: --log-max-bytes: %s\n",
                 size.ok() ? "a percentage means nothing here" : size.error().message.c_str());
    std::exit(2);
  }
  log::init({.level = log::parse_level(f.log_level, log::Level::Info),
             .file = f.log_file,
             .json = f.log_format != "text",
             .max_file_bytes = max_bytes,
             .max_backups = f.log_backups});
}

bool is_loopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::string error_body(int status, std::string_view message) {
  return openai::ApiError{status, std::string(message),
                          status >= 500 ? "server_error" : "invalid_request_error", {}, {}}
      .to_json();
}

struct ServeFlags {
  std::string config;
  std::string model;               // --model FILE.gguf: serve it in process
  std::string served_model_name;
  int threads = 0;
  int max_model_len = 0;
  int max_num_seqs = 0;
  int max_num_batched_tokens = 0;
  int max_num_queued_requests = 0;
  std::string kv_cache_memory;
  int block_size = 0;
  std::string kv_cache_dtype;
  bool enable_prefix_caching = true;
  std::string master_key;
  double log_sample_rate = 0;
  bool log_redact_content = false;
  double drain_timeout_s = 30;
  double read_timeout_s = 30;
  double idle_timeout_s = 75;
};

constexpr const char* kEmbeddedModelName = "ondol-dummy";

// The embedded default: a small random-weight model (the `tiny` dummy shape), written once to
// the cache directory, so that `ondol serve` with no arguments runs the whole stack, engine
// included. Its text is noise, and the startup lines say so.
Result<std::string> embedded_default_model() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) dir = fs::path(xdg) / "ondol";
  else if (const char* home = std::getenv("HOME"); home && *home) dir = fs::path(home) / ".cache" / "ondol";
  else dir = fs::temp_directory_path() / "ondol";
  fs::create_directories(dir, ec);
  if (ec) return make_error("cannot create " + dir.string() + ": " + ec.message());
  fs::path path = dir / "ondol-dummy-tiny-q8_0.gguf";
  if (fs::exists(path)) return path.string();
  // Written aside and renamed, so that two starting processes never read a half-written file.
  fs::path tmp = dir / fmt::format("ondol-dummy-tiny-q8_0.gguf.{}.tmp", getpid());
  if (auto st = engine::write_dummy_model("tiny", kernels::WeightType::kQ8_0, tmp.string(), 0); !st)
    return st.error();
  fs::rename(tmp, path, ec);
  if (ec) return make_error("cannot write " + path.string() + ": " + ec.message());
  return path.string();
}

// `--model FILE` as a one-entry config, so it goes through the same validation and routing.
std::string model_config(const ServeFlags& f) {
  std::string name = f.served_model_name;
  if (name.empty()) {
    name = f.model.substr(f.model.find_last_of('/') + 1);
    if (name.ends_with(".gguf")) name.resize(name.size() - 5);
  }
  std::string quoted_name, quoted_model;
  log::append_json_string(quoted_name, name);  // a JSON string is a YAML double-quoted scalar
  log::append_json_string(quoted_model, "local/" + f.model);
  std::string yaml = fmt::format("model_list:\n  - model_name: {}\n    litellm_params:\n      model: {}\n",
                                 quoted_name, quoted_model);
  auto add = [&](const char* key, int value) {
    if (value > 0) yaml += fmt::format("      {}: {}\n", key, value);
  };
  add("num_threads", f.threads);
  add("max_model_len", f.max_model_len);
  add("max_num_seqs", f.max_num_seqs);
  add("max_num_batched_tokens", f.max_num_batched_tokens);
  add("max_num_queued_requests", f.max_num_queued_requests);
  add("block_size", f.block_size);
  if (!f.kv_cache_memory.empty()) {
    std::string quoted;
    log::append_json_string(quoted, f.kv_cache_memory);
    yaml += fmt::format("      kv_cache_memory: {}\n", quoted);
  }
  if (!f.kv_cache_dtype.empty()) {
    std::string quoted;
    log::append_json_string(quoted, f.kv_cache_dtype);
    yaml += fmt::format("      kv_cache_dtype: {}\n", quoted);
  }
  if (!f.enable_prefix_caching) yaml += "      enable_prefix_caching: false\n";
  return yaml;
}

int run_serve(ServeFlags& flags, http::ServerOptions server_options, const CommonFlags& common) {
  init_logging(common);
  if (flags.master_key.empty()) {
    if (const char* env = std::getenv("ONDOL_MASTER_KEY")) flags.master_key = env;
  }
  server_options.read_timeout = std::chrono::milliseconds(static_cast<int64_t>(flags.read_timeout_s * 1000));
  server_options.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(flags.idle_timeout_s * 1000));

  metrics::Registry registry;
  registry.add_collector(metrics::collect_process_metrics);
  const bool embedded_default = flags.config.empty() && flags.model.empty();
  if (embedded_default) {
    auto path = embedded_default_model();
    if (!path) {
      std::fprintf(stderr, "ondol: embedded default model: %s\n", path.error().message.c_str());
      return 1;
    }
    flags.model = *path;
    flags.served_model_name = kEmbeddedModelName;
  }
  if (!flags.config.empty() && !flags.model.empty()) {
    std::fprintf(stderr, "ondol: give --config or --model, not both (a config can list "
                         "'model: local/PATH.gguf')\n");
    return 2;
  }
  gateway::Gateway gw(registry, {.config_path = flags.config,
                                 .config_text = flags.model.empty() ? "" : model_config(flags),
                                 .master_key = flags.master_key,
                                 .body_log = {.sample_rate = flags.log_sample_rate,
                                              .redact_content = flags.log_redact_content}});
  if (auto st = gw.load(); !st) {
    log::error("config", "cannot start: " + st.error().message);
    log::shutdown();
    std::fprintf(stderr, "ondol: %s\n", st.error().message.c_str());
    return 1;
  }
  if (!is_loopback(server_options.host) && gw.master_key().empty()) {
    std::string msg = fmt::format(
        "refusing to bind {} without a master key: anyone who can reach it could use every "
        "deployment. Set general_settings.master_key in the config, --master-key, or "
        "ONDOL_MASTER_KEY; or bind 127.0.0.1.",
        server_options.host);
    log::error("serve", msg);
    log::shutdown();
    std::fprintf(stderr, "ondol: %s\n", msg.c_str());
    return 1;
  }

  http::HttpServer server(
      server_options, [&gw](http::Exchange& ex) { return gw.handle(ex); }, error_body);
  if (auto st = server.listen(); !st) {
    log::error("serve", st.error().message);
    log::shutdown();
    std::fprintf(stderr, "ondol: %s\n", st.error().message.c_str());
    return 1;
  }

  // Signals: SIGHUP reloads; SIGTERM/SIGINT drain, a second one stops at once.
  asio::io_context& main_ctx = server.main_context();
  asio::signal_set hup(main_ctx, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      (void)gw.reload();
      wait_hup();
    });
  };
  wait_hup();
  asio::signal_set term(main_ctx, SIGTERM, SIGINT);
  asio::steady_timer drain_timer(main_ctx);
  auto drain_deadline = std::chrono::steady_clock::now();
  std::function<void()> poll_drain = [&] {
    if (server.active_requests() == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
      log::info("serve", "drained; exiting",
                {{"requests_abandoned", server.active_requests()}});
      server.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) poll_drain();
    });
  };
  std::function<void()> wait_term = [&] {
    term.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (gw.state() == gateway::ServingState::Draining) {
        log::warn("serve", "second signal: stopping now");
        server.stop();
        return;
      }
      log::info("serve", "draining",
                {{"signal", sig}, {"in_flight", server.active_requests()},
                 {"grace_s", flags.drain_timeout_s}});
      gw.set_state(gateway::ServingState::Draining);
      server.stop_accepting();
      drain_deadline = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(flags.drain_timeout_s * 1000));
      poll_drain();
      wait_term();
    });
  };
  wait_term();

  auto table = gw.table();
  if (embedded_default) {
    log::info("serve",
              "no --config or --model given: serving the embedded default, 'ondol-dummy', a small "
              "random-weight model run by ondol's engine. Its answers are noise: it shows the "
              "whole stack working. Pass --model FILE.gguf to serve a real model, or --config "
              "FILE to route to deployments.",
              {{"model_file", flags.model}});
  }
  for (const auto& g : table->groups()) {
    for (const auto* d : g->deployments) {
      log::info("serve", "model",
                {{"model_name", g->name}, {"provider", d->config.provider},
                 {"upstream_model", d->config.upstream_model},
                 {"api_base", d->config.api_base}, {"weight", d->config.weight}});
    }
  }
  log::info("serve", "listening",
            {{"url", fmt::format("http://{}:{}/v1", server_options.host, server.port())},
             {"port", static_cast<int>(server.port())},
             {"io_threads", server.io_threads()},
             {"auth", gw.master_key().empty() ? "none (loopback only)" : "master key"},
             {"routing_strategy", gateway::to_string(table->config().router.routing_strategy)},
             {"version", ONDOL_VERSION}});
  std::printf("ONDOL_LISTENING port=%u\n", server.port());
  std::fflush(stdout);
  gw.set_state(gateway::ServingState::Serving);
  server.run();
  log::info("serve", "stopped");
  log::shutdown();
  return 0;
}

int run_check(const std::string& path) {
  auto config = gateway::load_config_file(path);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 1;
  }
  for (const auto& w : config->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::fputs(gateway::format_routing_table(*config).c_str(), stdout);
  std::printf("config OK: %zu deployments, %zu models\n", config->deployments.size(),
              config->model_names().size());
  return 0;
}

int run_model_info(const std::string& path) {
  auto file = engine::GgufFile::open(path);
  if (!file) {
    std::fprintf(stderr, "ondol: %s: %s\n", path.c_str(), file.error().message.c_str());
    return 1;
  }
  std::fputs(engine::format_model_info(engine::model_info(*file)).c_str(), stdout);
  return 0;
}

int run_make_dummy(const std::string& shape, const std::string& type_name, const std::string& out,
                   uint64_t seed) {
  std::optional<kernels::WeightType> type;
  std::string names;
  for (auto t : {kernels::WeightType::kF32, kernels::WeightType::kF16, kernels::WeightType::kBF16,
                 kernels::WeightType::kQ8_0, kernels::WeightType::kQ4_0,
                 kernels::WeightType::kQ4_K}) {
    std::string name(kernels::weight_type_info(t).name);
    std::string lower;
    for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    names += (names.empty() ? "" : ", ") + lower;
    if (lower == type_name || name == type_name) type = t;
  }
  if (!type) {
    std::fprintf(stderr, "ondol: unknown --type '%s' (one of %s)\n", type_name.c_str(), names.c_str());
    return 2;
  }
  if (!engine::find_dummy_shape(shape)) {
    std::string shapes;
    for (const auto& s : engine::dummy_shapes()) shapes += (shapes.empty() ? "" : ", ") + std::string(s.name);
    std::fprintf(stderr, "ondol: unknown --shape '%s' (one of %s)\n", shape.c_str(), shapes.c_str());
    return 2;
  }
  if (auto st = engine::write_dummy_model(shape, *type, out, seed); !st) {
    std::fprintf(stderr, "ondol: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("wrote %s: %s, random weights (seed %llu), %s\n", out.c_str(), shape.c_str(),
              static_cast<unsigned long long>(seed), type_name.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ondol: an OpenAI-compatible LLM gateway and serving engine in one binary"};
  app.set_version_flag("--version", std::string("ondol ") + ONDOL_VERSION);
  app.require_subcommand(1);

  CommonFlags common;
  ServeFlags serve_flags;
  http::ServerOptions serve_server;
  auto* serve = app.add_subcommand("serve", "Serve the OpenAI-compatible API");
  serve->add_option("--config", serve_flags.config,
                    "Gateway config (LiteLLM-compatible YAML). Without it: the embedded default")
      ->check(CLI::ExistingFile);
  serve->add_option("--master-key", serve_flags.master_key,
                    "Bearer key clients must send (also ONDOL_MASTER_KEY, or "
                    "general_settings.master_key)");
  serve->add_option("--model", serve_flags.model,
                    "Serve this GGUF model in process (Llama, Mistral, Qwen2, TinyLlama)")
      ->check(CLI::ExistingFile);
  serve->add_option("--served-model-name", serve_flags.served_model_name,
                    "Name clients use for --model (default: the file name)");
  serve->add_option("--threads", serve_flags.threads, "Engine compute threads (0: one per core)");
  serve->add_option("--max-model-len", serve_flags.max_model_len,
                    "Longest prompt + completion in tokens (0: the model's context, up to 4096)");
  serve->add_option("--max-num-seqs", serve_flags.max_num_seqs, "Sequences per batch (default 16)");
  serve->add_option("--max-num-batched-tokens", serve_flags.max_num_batched_tokens,
                    "Tokens per forward pass (default 512)");
  serve->add_option("--max-num-queued-requests", serve_flags.max_num_queued_requests,
                    "Waiting requests beyond which new ones get 503 (default 256)");
  serve->add_option("--kv-cache-memory", serve_flags.kv_cache_memory,
                    "KV cache size: bytes (512MiB, 4GiB, ...) or a share of available memory "
                    "(25%) (default: room for --max-num-seqs full sequences, at most 512 MiB; "
                    "never less than one sequence of --max-model-len)");
  serve->add_option("--block-size", serve_flags.block_size, "Tokens per KV cache block (default 16)");
  serve->add_option("--kv-cache-dtype", serve_flags.kv_cache_dtype,
                    "KV cache storage: auto (float16), float16, float32, or int8 (one scale per "
                    "token and head: about half the memory and memory traffic of float16 at "
                    "head_dim 64 and up)");
  serve->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching",
                  serve_flags.enable_prefix_caching,
                  "Reuse the KV cache of common prompt prefixes (default on)");
  add_server_flags(serve, serve_server, 4000);
  serve->add_option("--drain-timeout", serve_flags.drain_timeout_s,
                    "Seconds in-flight requests get to finish after SIGTERM")
      ->capture_default_str();
  serve->add_option("--read-timeout", serve_flags.read_timeout_s,
                    "Seconds a client has to send a whole request")
      ->capture_default_str();
  serve->add_option("--idle-timeout", serve_flags.idle_timeout_s,
                    "Seconds an idle keep-alive connection stays open")
      ->capture_default_str();
  serve->add_option("--max-body-bytes", serve_server.max_body_bytes, "Largest request body")
      ->capture_default_str();
  serve->add_option("--max-header-bytes", serve_server.max_header_bytes,
                    "Largest request header block")
      ->capture_default_str();
  add_log_flags(serve, common);
  serve->add_option("--log-sample-rate", serve_flags.log_sample_rate,
                    "Share of API requests logged with their request and response bodies, "
                    "credentials redacted (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  serve->add_flag("--log-redact-content", serve_flags.log_redact_content,
                  "In logged bodies, also replace prompts, messages and completions with their "
                  "length");

  std::string check_config;
  auto* check = app.add_subcommand("check", "Validate a config and print the routing table");
  check->add_option("--config", check_config, "Gateway config file")->required();

  auto* model_cmd = app.add_subcommand("model", "Inspect GGUF models or write dummy ones");
  model_cmd->require_subcommand(1);
  std::string info_path;
  auto* info_cmd = model_cmd->add_subcommand("info", "Architecture, shape, types, tokenizer, memory");
  info_cmd->add_option("FILE", info_path, "A GGUF file")->required()->check(CLI::ExistingFile);
  std::string dummy_shape = "llama-110m", dummy_type = "q8_0", dummy_out;
  uint64_t dummy_seed = 0;
  auto* dummy_cmd = model_cmd->add_subcommand(
      "make-dummy", "Write a random-weight model of a named shape (for benchmarks)");
  dummy_cmd->add_option("--shape", dummy_shape, "llama-110m, tiny or tiny-qwen2")->capture_default_str();
  dummy_cmd->add_option("--type", dummy_type, "f32, f16, bf16, q8_0, q4_0 or q4_k")->capture_default_str();
  dummy_cmd->add_option("--seed", dummy_seed, "Random seed")->capture_default_str();
  dummy_cmd->add_option("OUT", dummy_out, "Output .gguf path")->required();

  gateway::mock::MockUpstreamOptions mock;
  auto* mock_cmd = app.add_subcommand(
      "mock-upstream", "Run an OpenAI-compatible mock upstream (for tests and benchmarks)");
  add_server_flags(mock_cmd, mock.server, 8001);
  mock_cmd->add_option("--latency-ms", mock.params.response_latency_ms,
                       "Delay before the first byte")
      ->capture_default_str();
  mock_cmd->add_option("--chunk-delay-ms", mock.params.chunk_delay_ms,
                       "Delay between stream chunks")
      ->capture_default_str();
  mock_cmd->add_option("--tokens-per-chunk", mock.params.tokens_per_chunk)->capture_default_str();
  mock_cmd->add_option("--output-tokens", mock.params.output_tokens,
                       "Completion length when the request sets no max_tokens")
      ->capture_default_str();
  mock_cmd->add_option("--fail-status", mock.fail_status,
                       "Answer every completion request with this HTTP status")
      ->capture_default_str();
  add_log_flags(mock_cmd, common);

  bench::BenchCli bench_cli(app);

  CLI11_PARSE(app, argc, argv);

  if (bench_cli.parsed()) return bench_cli.run();
  if (serve->parsed()) return run_serve(serve_flags, serve_server, common);
  if (check->parsed()) return run_check(check_config);
  if (info_cmd->parsed()) return run_model_info(info_path);
  if (dummy_cmd->parsed()) return run_make_dummy(dummy_shape, dummy_type, dummy_out, dummy_seed);
  if (mock_cmd->parsed()) {
    init_logging(common);
    int rc = gateway::mock::run_mock_upstream(mock);
    log::shutdown();
    return rc;
  }
  return 0;
}
