// ondol_serving_bench: the engine under concurrency, in process (no HTTP), as issue-level
// figures: aggregate generation tokens/s at several concurrency levels (closed loop: a new
// request starts as soon as one finishes), TTFT and inter-token latency percentiles, and TTFT
// of a prompt behind a long shared prefix with prefix caching on and off.
//
//   ondol_serving_bench [--model F.gguf | --shape llama-110m --type q8_0] [--threads 2]
//                       [--concurrency 1,4,16,64] [--prompt 128] [--gen 128] [--runs 3]
//                       [--prefix 512]
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/kernels/weight_type.h"
#include "engine/model/dummy_model.h"

using namespace ondol;
using namespace ondol::engine;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double p) {  // linear interpolation, as numpy
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

std::string triple(std::vector<double> v, const char* fmt_spec = "{:.0f}") {
  std::sort(v.begin(), v.end());
  return fmt::format(fmt::runtime(std::string(fmt_spec) + " / " + fmt_spec + " / " + fmt_spec),
                     v.front(), v[v.size() / 2], v.back());
}

// Token times of one request, stamped on the step thread as each token's text is pushed.
struct Tracked {
  std::shared_ptr<RequestChannel> channel;
  Clock::time_point submitted;
  std::vector<Clock::time_point> token_times;
  int tokens = 0;
  bool finished = false;
};

// A prompt of exactly `n` tokens (BOS included) of random words from the model's own vocabulary.
std::string prompt_of(const Engine& engine, int n, std::mt19937& rng) {
  std::uniform_int_distribution<TokenId> pick(300, engine.info().vocab_size - 1);
  std::vector<TokenId> ids;
  std::string text;
  while (true) {
    auto enc = engine.tokenize(text, true);
    if (static_cast<int>(enc.size()) >= n) {
      enc.resize(static_cast<size_t>(n));
      // Decode the first n (without BOS) and re-encode; tokenizers are stable on their output
      // for these word pieces, and the count is checked below.
      std::vector<TokenId> body(enc.begin() + 1, enc.end());
      return engine.detokenize(body);
    }
    TokenId id = pick(rng);
    text += engine.detokenize(std::span<const TokenId>(&id, 1));
  }
}

struct RunResult {
  double gen_tok_s = 0;
  std::vector<double> ttft_ms, itl_ms;
  int64_t preemptions = 0;
};

// Closed loop: `concurrency` requests in flight until `total` have finished.
RunResult run_load(Engine& engine, const std::vector<std::string>& prompts, int concurrency,
                   int total, int gen, float temperature) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Tracked>> reqs;
  int started = 0, finished = 0;
  RunResult r;
  const int64_t preempt0 = engine.stats().num_preemptions;
  auto start_one = [&](int i) {
    EngineRequest req;
    req.chat = false;
    req.prompt = prompts[static_cast<size_t>(i) % prompts.size()];
    req.sampling.temperature = temperature;
    req.sampling.ignore_eos = true;
    req.sampling.max_tokens = gen;
    auto t = std::make_unique<Tracked>();
    Tracked* raw = t.get();
    raw->submitted = Clock::now();
    auto ch = engine.submit(std::move(req));
    if (!ch.ok()) {
      std::fprintf(stderr, "submit: %s\n", ch.error().message.c_str());
      std::exit(1);
    }
    raw->channel = *ch;
    reqs.push_back(std::move(t));
    raw->channel->set_notify([raw, &mu, &cv, &finished] {
      const auto now = Clock::now();
      EngineOutput out;
      raw->channel->drain(out);
      std::lock_guard lock(mu);
      for (int k = raw->tokens; k < out.completion_tokens; ++k) raw->token_times.push_back(now);
      raw->tokens = std::max(raw->tokens, out.completion_tokens);
      if (out.finished && !raw->finished) {
        raw->finished = true;
        ++finished;
        cv.notify_all();
      }
    });
  };
  const auto t0 = Clock::now();
  {
    std::unique_lock lock(mu);
    while (finished < total) {
      while (started < total && started - finished < concurrency) {
        lock.unlock();
        start_one(started);
        lock.lock();
        ++started;
      }
      cv.wait(lock, [&] {
        return finished == total || (started < total && started - finished < concurrency);
      });
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  int64_t tokens = 0;
  for (auto& t : reqs) {
    t->channel->set_notify(nullptr);
    tokens += t->tokens;
    if (!t->token_times.empty()) r.ttft_ms.push_back(ms(t->token_times.front() - t->submitted));
    for (size_t k = 1; k < t->token_times.size(); ++k)
      r.itl_ms.push_back(ms(t->token_times[k] - t->token_times[k - 1]));
  }
  r.gen_tok_s = static_cast<double>(tokens) / secs;
  r.preemptions = engine.stats().num_preemptions - preempt0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ondol engine serving benchmark (in process)"};
  std::string model, shape = "llama-110m", type = "q8_0", concurrency = "1,4,16,64";
  std::string kv_dtype = "auto";
  float temperature = 0;
  int threads = 2, prompt_len = 128, gen = 128, runs = 3, prefix_len = 512, max_num_seqs = 64;
  int64_t kv_bytes = int64_t{1} << 30;
  app.add_option("--model", model, "A GGUF model (default: a dummy of --shape and --type)");
  app.add_option("--shape", shape)->capture_default_str();
  app.add_option("--type", type)->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--concurrency", concurrency, "Comma-separated levels")->capture_default_str();
  app.add_option("--prompt", prompt_len, "Prompt tokens")->capture_default_str();
  app.add_option("--gen", gen, "Generated tokens (ignore_eos)")->capture_default_str();
  app.add_option("--runs", runs)->capture_default_str();
  app.add_option("--prefix", prefix_len, "Shared prefix tokens for the TTFT figure (0: skip)")
      ->capture_default_str();
  app.add_option("--max-num-seqs", max_num_seqs)->capture_default_str();
  app.add_option("--kv-cache-memory", kv_bytes)->capture_default_str();
  app.add_option("--kv-cache-dtype", kv_dtype, "auto (float16), float16, float32 or int8")
      ->capture_default_str();
  app.add_option("--temperature", temperature,
                 "Sampling temperature of the load (0: greedy; otherwise the full vocabulary)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured

  std::string tmp;
  if (model.empty()) {
    std::optional<kernels::WeightType> wt;
    for (auto t : {kernels::WeightType::kF32, kernels::WeightType::kF16, kernels::WeightType::kQ8_0,
                   kernels::WeightType::kQ4_0, kernels::WeightType::kQ4_K}) {
      std::string name(kernels::weight_type_info(t).name);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (name == type) wt = t;
    }
    if (!wt) {
      std::fprintf(stderr, "unknown --type %s\n", type.c_str());
      return 2;
    }
    tmp = (std::filesystem::temp_directory_path() / fmt::format("ondol-serving-bench-{}-{}.gguf", shape, type)).string();
    if (!std::filesystem::exists(tmp)) {
      if (auto st = write_dummy_model(shape, *wt, tmp + ".part", 1); !st) {
        std::fprintf(stderr, "%s\n", st.error().message.c_str());
        return 1;
      }
      std::filesystem::rename(tmp + ".part", tmp);
    }
    model = tmp;
  }
  std::vector<int> levels;
  {
    std::stringstream ss(concurrency);
    for (std::string item; std::getline(ss, item, ',');) levels.push_back(std::stoi(item));
  }
  auto start_engine = [&](bool caching) {
    EngineOptions o{.model_path = model};
    o.num_threads = threads;
    o.max_model_len = std::max(prompt_len + gen, prefix_len + 64 + 16);
    o.max_num_seqs = max_num_seqs;
    o.kv_cache_bytes = kv_bytes;
    o.kv_cache_dtype = kv_dtype;
    o.enable_prefix_caching = caching;
    auto e = Engine::start(o);
    if (!e.ok()) {
      std::fprintf(stderr, "%s\n", e.error().message.c_str());
      std::exit(1);
    }
    return std::move(*e);
  };

  {
    std::ifstream loadavg("/proc/loadavg");
    std::string l1, l5, l15;
    loadavg >> l1 >> l5 >> l15;
    std::printf("machine: %u CPUs, load average %s %s %s\n", std::thread::hardware_concurrency(),
                l1.c_str(), l5.c_str(), l15.c_str());
  }
  std::printf(
      "model %s, %d threads, prompt %d tokens, %d generated (ignore_eos), temperature %g, %d runs\n",
      std::filesystem::path(model).filename().c_str(), threads, prompt_len, gen, temperature, runs);
  {
    auto engine = start_engine(true);
    std::printf("KV blocks %d (%s), max_num_seqs %d\n", engine->info().num_kv_blocks,
                engine->info().kv_cache_dtype.c_str(), max_num_seqs);
    std::mt19937 rng(42);
    // A fresh random prompt for every request of every run: no request finds another's blocks
    // in the prefix cache, so caching does not flatter these figures (the hit count says so).
    int needed = 0;
    for (int c : levels) needed += std::max(2 * c, 4) * runs;
    std::vector<std::string> prompts;
    double mean_len = 0;
    for (int i = 0; i < needed; ++i) {
      prompts.push_back(prompt_of(*engine, prompt_len, rng));
      mean_len += static_cast<double>(engine->tokenize(prompts.back(), true).size()) / needed;
    }
    std::printf("prompts: %d, %.1f tokens on average (BOS included)\n", needed, mean_len);
    std::printf("\n%-12s %-28s %-14s %-14s %-14s %-14s %s\n", "concurrency",
                "gen tok/s (min/med/max)", "TTFT p50 ms", "TTFT p99 ms", "ITL p50 ms",
                "ITL p99 ms", "x single  cache hits (tokens)");
    double single = 0;
    int offset = 0;
    for (int c : levels) {
      std::vector<double> rates;
      RunResult last;
      std::vector<double> ttft, itl;
      for (int run = 0; run < runs; ++run) {
        const int total = std::max(2 * c, 4);
        std::vector<std::string> batch(prompts.begin() + offset, prompts.begin() + offset + total);
        offset += total;
        RunResult r = run_load(*engine, batch, c, total, gen, temperature);
        rates.push_back(r.gen_tok_s);
        ttft.insert(ttft.end(), r.ttft_ms.begin(), r.ttft_ms.end());
        itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
        last = r;
      }
      std::vector<double> sorted = rates;
      std::sort(sorted.begin(), sorted.end());
      const double median = sorted[sorted.size() / 2];
      if (c == levels.front()) single = median;
      std::printf("%-12d %-28s %-14.1f %-14.1f %-14.1f %-14.1f %-8.2f %lld%s\n", c, triple(rates).c_str(),
                  percentile(ttft, 50), percentile(ttft, 99), percentile(itl, 50),
                  percentile(itl, 99), median / single,
                  static_cast<long long>(engine->stats().prefix_cache_hits),
                  last.preemptions ? fmt::format("  ({} preemptions)", last.preemptions).c_str() : "");
    }
  }

  if (prefix_len > 0) {
    // TTFT of a 512-token shared prefix + a 16-token question, one request at a time, with the
    // prefix in the cache (after one warm-up request) and without caching.
    std::printf("\nTTFT with a %d-token shared prefix + 16-token suffix, 16 generated, one at a time\n",
                prefix_len);
    std::printf("%-22s %-28s\n", "prefix caching", "TTFT ms (min/med/max)");
    std::vector<double> medians;
    for (bool caching : {false, true}) {
      auto engine = start_engine(caching);
      std::mt19937 rng(7);
      const std::string prefix = prompt_of(*engine, prefix_len, rng);
      std::vector<std::string> questions;
      for (int i = 0; i < 1 + runs * 4; ++i) questions.push_back(prefix + prompt_of(*engine, 17, rng));
      RunResult warm = run_load(*engine, {questions.front()}, 1, 1, 16, 0);
      (void)warm;
      std::vector<double> ttft;
      for (size_t i = 1; i < questions.size(); ++i) {
        RunResult r = run_load(*engine, {questions[i]}, 1, 1, 16, 0);
        ttft.push_back(r.ttft_ms.front());
      }
      std::sort(ttft.begin(), ttft.end());
      medians.push_back(ttft[ttft.size() / 2]);
      const EngineStats s = engine->stats();
      std::printf("%-22s %-28s hits %lld of %lld prompt tokens\n", caching ? "on" : "off",
                  triple(ttft, "{:.1f}").c_str(), static_cast<long long>(s.prefix_cache_hits),
                  static_cast<long long>(s.prefix_cache_queries));
    }
    std::printf("uncached / cached TTFT (medians): %.1fx\n", medians[0] / medians[1]);
  }
  return 0;
}
