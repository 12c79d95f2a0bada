// ondol_model_bench: prompt-processing and generation speed of the Llama forward pass, and the
// memory-bandwidth bound for generation on this machine.
//
//   ondol_model_bench --shape llama-110m --type Q4_K --threads 2 --prompt 128 --gen 64 --runs 3
//   ondol_model_bench --model path/to/model.gguf --threads 2
//
// A dummy model is written once to --dir (random weights, see dummy_model.h) and reused. Each
// run prefills a fresh sequence with one forward of --prompt tokens (logits for the last only),
// then decodes --gen tokens one forward each (greedy). One warm-up run is not counted. Reports
// min / median / max over --runs, then the generation bound: weight bytes read per decoded
// token divided by the read bandwidth measured here with the same threads.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/isa.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/repacked_weights.h"
#include "engine/kernels/thread_pool.h"
#include "engine/kernels/weight_type.h"
#include "engine/model/dummy_model.h"
#include "engine/model/llama_model.h"
#include "engine/model/model_info.h"

namespace ondol::engine {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Stats {
  double min, median, max;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2], v.back()};
}

// Bytes every decode step streams from memory: all layer matrices plus the output matrix (the
// embedding lookup reads one row). Norms are negligible but counted.
int64_t weight_bytes_per_token(const LlamaModel& model) {
  auto bytes = [](const kernels::WeightMatrix& w) {
    return w.layout == kernels::WeightLayout::kQ8_0x16
               ? kernels::q8_0x16_bytes(w.num_rows, w.num_cols)
               : w.num_rows * kernels::row_bytes(w.type, w.num_cols);
  };
  const ModelWeights& w = model.weights();
  int64_t total = bytes(w.output);
  for (const LayerWeights& l : w.layers) {
    for (const kernels::WeightMatrix* m :
         {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      total += bytes(*m);
    }
    total += 2 * int64_t{model.config().dim} * 4;
  }
  return total;
}

// Read bandwidth in GB/s: `threads` threads sum a buffer far larger than the caches with the
// active ISA's dot kernel (which streams its operands), best of a few passes.
double read_bandwidth_gbs(int threads, int64_t buffer_bytes) {
  const kernels::KernelTable& k = kernels::active_kernels();
  std::vector<float> buf(static_cast<size_t>(buffer_bytes / 4), 1.0f);
  kernels::ThreadPool pool(threads);
  constexpr int64_t kChunkFloats = 1 << 18;  // 1 MiB
  const int64_t n = static_cast<int64_t>(buf.size());
  const int64_t chunks = (n + kChunkFloats - 1) / kChunkFloats;
  std::vector<float> sink(static_cast<size_t>(chunks));
  double best = 0;
  for (int pass = 0; pass < 10; ++pass) {
    const auto start = Clock::now();
    pool.parallel_for(chunks, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const float* p = buf.data() + c * kChunkFloats;
        const int64_t len = std::min(kChunkFloats, n - c * kChunkFloats);
        sink[c] = k.dot(p, p, len);  // both operands are the same bytes: one stream
      }
    });
    best = std::max(best, static_cast<double>(buffer_bytes) / seconds_since(start) / 1e9);
  }
  if (sink[0] != static_cast<float>(kChunkFloats)) std::fprintf(stderr, "bandwidth: bad sum\n");
  return best;
}

struct RunResult {
  double prompt_tok_s = 0;
  double gen_tok_s = 0;
};

RunResult run_once(LlamaModel& model, KvCache& cache, const std::vector<TokenId>& prompt,
                   int num_gen) {
  BlockTable table;
  const int64_t total = static_cast<int64_t>(prompt.size()) + num_gen;
  if (!cache.reserve(table, total)) {
    std::fprintf(stderr, "KV cache too small\n");
    std::exit(1);
  }
  const BlockTable* tables[] = {&table};
  const KvView kv{&cache, tables};
  std::vector<float> logits(model.vocab_size());
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < prompt.size(); ++i) {
    batch.push_back({.token = prompt[i],
                     .position = static_cast<int32_t>(i),
                     .seq_slot = 0,
                     .wants_logits = i + 1 == prompt.size()});
  }
  RunResult r;
  auto start = Clock::now();
  if (Status s = model.forward(Batch{batch}, kv, logits.data()); !s) {
    std::fprintf(stderr, "forward: %s\n", s.error().message.c_str());
    std::exit(1);
  }
  r.prompt_tok_s = static_cast<double>(prompt.size()) / seconds_since(start);

  start = Clock::now();
  BatchToken step{.position = static_cast<int32_t>(prompt.size()), .wants_logits = true};
  for (int i = 0; i < num_gen; ++i) {
    step.token =
        static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (Status s = model.forward(Batch{std::span(&step, 1)}, kv, logits.data()); !s) {
      std::fprintf(stderr, "forward: %s\n", s.error().message.c_str());
      std::exit(1);
    }
    ++step.position;
  }
  r.gen_tok_s = num_gen / seconds_since(start);
  cache.release(table);
  return r;
}

int main_impl(int argc, char** argv) {
  CLI::App app{"ondol_model_bench: prompt and generation tokens/s of the Llama forward pass"};
  std::string model_path, shape = "llama-110m", type_name = "Q4_K", kv_name = "f16";
  std::string dir = (std::filesystem::temp_directory_path() / "ondol-bench-models").string();
  int threads = 2, num_prompt = 128, num_gen = 64, runs = 3;
  int64_t bandwidth_mib = 1024;
  app.add_option("--model", model_path, "GGUF to load (else a dummy of --shape/--type)");
  app.add_option("--shape", shape, "dummy shape")->capture_default_str();
  app.add_option("--type", type_name, "dummy weight type: F32 F16 BF16 Q8_0 Q4_0 Q4_K")
      ->capture_default_str();
  app.add_option("--dir", dir, "where dummy models are written and reused")->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--prompt", num_prompt, "prompt tokens (one forward)")->capture_default_str();
  app.add_option("--gen", num_gen, "generated tokens (one forward each)")->capture_default_str();
  app.add_option("--runs", runs)->capture_default_str();
  app.add_option("--kv", kv_name, "KV cache dtype: f16 or f32")->capture_default_str();
  app.add_option("--bandwidth-mib", bandwidth_mib, "read-bandwidth buffer; 0 skips the test")
      ->capture_default_str();
  bool info_only = false;
  app.add_flag("--info", info_only, "print the model summary (as `ondol model info`) and exit");
  CLI11_PARSE(app, argc, argv);

  if (model_path.empty()) {
    std::optional<kernels::WeightType> type;
    for (uint32_t id : {0u, 1u, 2u, 8u, 12u, 30u}) {
      auto t = kernels::weight_type_from_ggml(id);
      if (t && kernels::weight_type_info(*t).name == type_name) type = t;
    }
    if (!type) {
      std::fprintf(stderr, "unknown --type %s\n", type_name.c_str());
      return 2;
    }
    std::filesystem::create_directories(dir);
    model_path = fmt::format("{}/{}-{}.gguf", dir, shape, type_name);
    if (!std::filesystem::exists(model_path)) {
      const auto start = Clock::now();
      const std::string tmp = model_path + ".partial";
      if (Status s = write_dummy_model(shape, *type, tmp, 0); !s) {
        std::fprintf(stderr, "make-dummy: %s\n", s.error().message.c_str());
        return 1;
      }
      std::filesystem::rename(tmp, model_path);
      std::printf("wrote %s in %.1f s\n", model_path.c_str(), seconds_since(start));
    }
  }
  if (info_only) {
    auto file = GgufFile::open(model_path, {.allow_unsupported_types = true});
    if (!file) {
      std::fprintf(stderr, "open: %s\n", file.error().message.c_str());
      return 1;
    }
    std::printf("%s", format_model_info(model_info(*file)).c_str());
    return 0;
  }
  auto model = LlamaModel::open(model_path, {.num_threads = threads,
                                             .max_batch_tokens = std::max(num_prompt, 1),
                                             .max_context = num_prompt + num_gen});
  if (!model) {
    std::fprintf(stderr, "load: %s\n", model.error().message.c_str());
    return 1;
  }
  LlamaModel& m = **model;
  const KvDtype kv_dtype = kv_name == "f32" ? KvDtype::kF32 : KvDtype::kF16;
  const int blocks = (num_prompt + num_gen + kDefaultBlockSize - 1) / kDefaultBlockSize;
  auto cache = KvCache::create(m.kv_cache_config(blocks, kv_dtype));
  if (!cache) {
    std::fprintf(stderr, "kv: %s\n", cache.error().message.c_str());
    return 1;
  }
  std::mt19937 rng(1);
  std::uniform_int_distribution<TokenId> token(3, m.vocab_size() - 1);
  std::vector<TokenId> prompt = {1};
  while (static_cast<int>(prompt.size()) < num_prompt) prompt.push_back(token(rng));

  const int64_t bytes_per_token = weight_bytes_per_token(m);
  std::printf("model %s: %d layers, dim %d, vocab %d; ISA %s; %d threads; KV %s\n",
              model_path.c_str(), m.config().num_layers, m.config().dim, m.vocab_size(),
              std::string(kernels::isa_name(kernels::active_kernels().isa)).c_str(), threads,
              kv_name.c_str());
  std::printf("weights read per generated token: %.1f MB\n", bytes_per_token / 1e6);

  run_once(m, *cache, prompt, num_gen);  // warm-up: page in the mapping, spin up the pool
  std::vector<double> pp, tg;
  for (int r = 0; r < runs; ++r) {
    const RunResult res = run_once(m, *cache, prompt, num_gen);
    std::printf("run %d: prompt %d tokens %.1f tok/s, generation %d tokens %.1f tok/s\n", r + 1,
                num_prompt, res.prompt_tok_s, num_gen, res.gen_tok_s);
    pp.push_back(res.prompt_tok_s);
    tg.push_back(res.gen_tok_s);
  }
  const Stats p = stats(pp), g = stats(tg);
  std::printf("prompt tok/s     min %.1f  median %.1f  max %.1f\n", p.min, p.median, p.max);
  std::printf("generation tok/s min %.1f  median %.1f  max %.1f\n", g.min, g.median, g.max);
  if (bandwidth_mib > 0) {
    const double gbs = read_bandwidth_gbs(threads, bandwidth_mib << 20);
    const double bound = gbs * 1e9 / static_cast<double>(bytes_per_token);
    std::printf(
        "read bandwidth %.1f GB/s (%d threads) -> generation bound %.1f tok/s; "
        "median reaches %.0f%%\n",
        gbs, threads, bound, 100.0 * g.median / bound);
  }
  return 0;
}

}  // namespace
}  // namespace ondol::engine

int main(int argc, char** argv) {
  return ondol::engine::main_impl(argc, argv);
}
