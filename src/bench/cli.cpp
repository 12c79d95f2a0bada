#include "bench/cli.h"

#include <CLI/CLI.hpp>

#include "bench/commands.h"

namespace ondol::bench {

namespace {

void add_server_flags(CLI::App* cmd, ServerFlags& f) {
  cmd->add_option("--backend", f.backend,
                  "openai (completions) or openai-chat (chat completions); default: from "
                  "--endpoint");
  cmd->add_option("--base-url", f.base_url,
                  "Server URL, e.g. http://127.0.0.1:4000 "
                  "(overrides --host/--port)");
  cmd->add_option("--host", f.host, "Server host")->capture_default_str();
  cmd->add_option("--port", f.port, "Server port")->capture_default_str();
  cmd->add_option("--endpoint", f.endpoint,
                  "API path (default /v1/completions; /v1/chat/completions for openai-chat)");
  cmd->add_option("--model", f.model, "Model name sent (default: the first of GET /v1/models)");
  cmd->add_option("--api-key", f.api_key, "Bearer key (default: $OPENAI_API_KEY)");
  cmd->add_option("--request-timeout", f.request_timeout_s,
                  "Seconds to the first byte, and for any gap in a stream")
      ->capture_default_str();
}

}  // namespace

struct BenchCli::State {
  BenchFlags bench;
  RegressFlags regress;
  CLI::App* bench_cmd = nullptr;
  CLI::App* regress_cmd = nullptr;
  CLI::Option* save_result_option = nullptr;
};

BenchCli::BenchCli(CLI::App& app) : state_(std::make_unique<State>()) {
  BenchFlags& f = state_->bench;
  auto* cmd = app.add_subcommand(
      "bench", "Load benchmark of an OpenAI-compatible server (flags as vLLM's benchmark)");
  state_->bench_cmd = cmd;
  cmd->require_subcommand(0, 1);
  add_server_flags(cmd, f.server);
  cmd->add_option("--max-concurrency", f.server.max_concurrency,
                  "Requests in flight at most (default: no limit)");
  cmd->add_option("--num-prompts", f.num_prompts, "Requests to measure")->capture_default_str();
  cmd->add_option("--request-rate", f.request_rate,
                  "Requests per second (Poisson or gamma arrivals), or inf: all at once")
      ->capture_default_str();
  cmd->add_option("--burstiness", f.burstiness,
                  "Gamma shape of inter-arrival times: 1 Poisson, < 1 burstier, > 1 steadier")
      ->capture_default_str();
  cmd->add_option("--dataset-name", f.dataset_name, "sharegpt, random or prefix-repetition")
      ->capture_default_str();
  cmd->add_option("--dataset-path", f.dataset_path, "ShareGPT-format JSON file");
  cmd->add_option("--tokenizer", f.tokenizer,
                  "A GGUF (the served model, or vocab-only) whose tokenizer makes prompt lengths "
                  "exact instead of estimated")
      ->check(CLI::ExistingFile);
  cmd->add_option("--sharegpt-output-len", f.sharegpt_output_len,
                  "max_tokens for every ShareGPT prompt (default: the recorded answer's length)");
  cmd->add_option("--random-input-len", f.random_input_len, "Prompt tokens (about one per word)")
      ->capture_default_str();
  cmd->add_option("--random-output-len", f.random_output_len, "max_tokens")->capture_default_str();
  cmd->add_option("--random-range-ratio", f.random_range_ratio,
                  "Lengths uniform in [len*(1-r), len*(1+r)]")
      ->capture_default_str();
  cmd->add_option("--random-prefix-len", f.random_prefix_len,
                  "Tokens of a prefix shared by every random prompt")
      ->capture_default_str();
  cmd->add_option("--prefix-repetition-prefix-len", f.prefix_len,
                  "Tokens of each shared prefix (prefix-repetition)")
      ->capture_default_str();
  cmd->add_option("--prefix-repetition-suffix-len", f.suffix_len,
                  "Tokens of the random suffix after the prefix")
      ->capture_default_str();
  cmd->add_option("--prefix-repetition-num-prefixes", f.num_prefixes,
                  "Distinct prefixes, used in turn")
      ->capture_default_str();
  cmd->add_option("--prefix-repetition-output-len", f.prefix_output_len,
                  "max_tokens of prefix-repetition requests")
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "Seeds the datasets and the arrival times")
      ->capture_default_str();
  cmd->add_option("--num-warmups", f.num_warmups, "Requests sent before the measured run")
      ->capture_default_str();
  cmd->add_flag("--ignore-eos", f.ignore_eos, "Send ignore_eos: true (full max_tokens)");
  cmd->add_flag("--no-stream", f.no_stream,
                "Non-streaming requests (ondol's addition; TTFT is then the whole latency)");
  cmd->add_option("--temperature", f.temperature, "Sampling temperature")->capture_default_str();
  cmd->add_option("--goodput", f.goodput, "SLOs for goodput: ttft:MS tpot:MS e2el:MS")
      ->expected(1, 3);
  cmd->add_option("--percentile-metrics", f.percentile_metrics,
                  "Metrics reported with percentiles, among ttft,tpot,itl,e2el")
      ->capture_default_str();
  cmd->add_option("--metric-percentiles", f.metric_percentiles,
                  "Percentiles reported, comma-separated (e.g. 50,90,99)")
      ->capture_default_str();
  state_->save_result_option =
      cmd->add_option("--save-result", f.save_result_file,
                      "Save the result JSON (to the file given, or --result-filename, or a "
                      "vLLM-style name)")
          ->expected(0, 1);
  cmd->add_option("--result-filename", f.result_filename, "File name for --save-result");
  cmd->add_option("--result-dir", f.result_dir, "Directory for --save-result");
  cmd->add_option("--plot", f.plot, "Write latency distributions and throughput to this SVG");
  cmd->add_flag("--disable-tqdm", f.disable_tqdm, "No progress bar");
  cmd->add_option("--io-threads", f.io_threads, "Client I/O threads")->capture_default_str();

  RegressFlags& r = state_->regress;
  auto* reg = cmd->add_subcommand(
      "regress", "Replay saved prompts and compare the answers (or --record a baseline)");
  state_->regress_cmd = reg;
  add_server_flags(reg, r.server);
  reg->add_option("--baseline", r.baseline, "Baseline to replay and compare with");
  reg->add_option("--record", r.record, "Write a new baseline to this file");
  reg->add_option("--prompts", r.prompts,
                  "Prompts to record: one per line, or a .json list of strings / objects");
  reg->add_option("--max-tokens", r.max_tokens, "max_tokens when recording")->capture_default_str();
  reg->add_option("--temperature", r.temperature, "Temperature when recording")
      ->capture_default_str();
  reg->add_option("--seed", r.seed, "Seed sent when recording");
  reg->add_option("--min-similarity", r.min_similarity,
                  "Normalised Levenshtein similarity required of entries with temperature > 0")
      ->capture_default_str();
  reg->add_option("--max-concurrency", r.server.max_concurrency, "Requests in flight (default 1)");
}

BenchCli::~BenchCli() = default;

bool BenchCli::parsed() const {
  return state_->bench_cmd->parsed();
}

int BenchCli::run() {
  if (state_->regress_cmd->parsed()) return run_regress(state_->regress);
  state_->bench.save_result = state_->save_result_option->count() > 0;
  return run_bench(state_->bench);
}

}  // namespace ondol::bench
