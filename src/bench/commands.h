// The two commands behind `ondol bench`: their flags as plain structs (filled by cli.cpp), the
// runners, and what both share: where requests go, the served model, result files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/request.h"
#include "common/result.h"
#include "http/client.h"

namespace ondol::bench {

inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Where requests go and how (shared by `bench` and `bench regress`).
struct ServerFlags {
  std::string backend;  // empty: from the endpoint
  std::string base_url;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string endpoint;  // empty: from the backend
  std::string model;
  std::string api_key;
  double request_timeout_s = 600;
  int max_concurrency = 0;  // 0: no limit (regress: 1)
};

// `ondol bench`: flags as vLLM's benchmark names them (docs/bench.md has the table).
struct BenchFlags {
  ServerFlags server;
  int num_prompts = 1000;
  std::string request_rate = "inf";
  double burstiness = 1.0;
  std::string dataset_name = "random";
  std::string dataset_path;
  std::string tokenizer;  // a GGUF whose tokenizer makes prompt lengths exact
  int64_t sharegpt_output_len = 0;
  int64_t random_input_len = 1024;
  int64_t random_output_len = 128;
  double random_range_ratio = 0.0;
  int64_t random_prefix_len = 0;
  int64_t prefix_len = 256;
  int64_t suffix_len = 256;
  int64_t num_prefixes = 10;
  int64_t prefix_output_len = 128;
  uint64_t seed = 0;
  int num_warmups = 0;
  bool ignore_eos = false;
  bool no_stream = false;
  double temperature = 0;
  std::vector<std::string> goodput;
  std::string percentile_metrics = "ttft,tpot,itl";
  std::string metric_percentiles = "99";
  bool save_result = false;      // --save-result given
  std::string save_result_file;  // its value, when one was given
  std::string result_filename;
  std::string result_dir;
  std::string plot;
  bool disable_tqdm = false;
  int io_threads = 1;
};

// `ondol bench regress`: --baseline FILE to replay, or --record FILE --prompts FILE.
struct RegressFlags {
  ServerFlags server;
  std::string baseline;
  std::string record;
  std::string prompts;
  int64_t max_tokens = 64;
  double temperature = 0;
  std::optional<int64_t> seed;
  double min_similarity = 0.9;
};

// Where requests go: the target (URL, key), the path and the API kind.
struct Endpoint {
  http::UpstreamTarget target;
  std::string path;
  std::string backend;
  ApiKind api = ApiKind::Completions;
};

// Fills the defaults of `f` (backend from the endpoint and back, $OPENAI_API_KEY) and resolves
// the URL.
Result<Endpoint> resolve_endpoint(ServerFlags& f);
// Sets f.model, when empty, to the first model of GET /v1/models (as vLLM's benchmark does).
Status resolve_model(ServerFlags& f, const Endpoint& e);

Status write_file(const std::string& path, std::string_view text);
Result<std::string> read_file(const std::string& path);
// Thousands of connections need as many descriptors: takes what the hard limit allows.
void raise_open_files_limit();

int run_bench(BenchFlags& flags);      // `ondol bench`: the process exit code
int run_regress(RegressFlags& flags);  // `ondol bench regress`

}  // namespace ondol::bench
