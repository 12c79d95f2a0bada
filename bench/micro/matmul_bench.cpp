// Matmul throughput per weight format at the shapes of a 110M-parameter Llama (dim 768, FFN
// 2048, vocab 32000): matvec (M=1, one decode step) reported as GB/s of weights streamed, and
// matmul (M=128, a prefill chunk) as GFLOP/s, on 1 and 2 threads. Includes the activation
// conversion, as the forward pass pays it.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/kernel_table.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/repacked_weights.h"
#include "engine/kernels/thread_pool.h"

namespace ondol::kernels {
namespace {

constexpr int64_t kDim = 768;
constexpr int64_t kDistinctRows = 256;  // quantized once, then repeated to fill N rows

// Weights of one format and shape, built on first use and kept for the whole run.
const std::vector<uint8_t>& weights(WeightType type, int64_t n) {
  static std::map<std::pair<WeightType, int64_t>, std::vector<uint8_t>> cache;
  std::vector<uint8_t>& bytes = cache[{type, n}];
  if (!bytes.empty()) return bytes;
  const int64_t row = row_bytes(type, kDim);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> x(kDim);
  std::vector<uint8_t> distinct(kDistinctRows * row);
  for (int64_t r = 0; r < kDistinctRows; ++r) {
    for (float& v : x) v = dist(rng);
    quantize_row(type, x.data(), distinct.data() + r * row, kDim);
  }
  bytes.resize(n * row);
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(bytes.data() + r * row, distinct.data() + (r % kDistinctRows) * row, row);
  }
  return bytes;
}

ThreadPool& pool(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  std::unique_ptr<ThreadPool>& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

struct AlignedScratch {
  explicit AlignedScratch(int64_t bytes) : storage(bytes + 64) {
    const auto address = reinterpret_cast<uintptr_t>(storage.data());
    data = storage.data() + (64 - address % 64) % 64;
  }
  std::vector<uint8_t> storage;
  uint8_t* data;
};

// layout kQ8_0x16: the Q8_0 weights repacked as the model loader does where the level has a
// kernel for it (registered only then).
void bench_matmul(benchmark::State& state, WeightType type, WeightLayout layout, int64_t m,
                  int64_t n, int threads) {
  const KernelTable& kernels = active_kernels();
  const std::vector<uint8_t>& w = weights(type, n);
  WeightMatrix matrix{.type = type, .data = w.data(), .num_rows = n, .num_cols = kDim};
  std::unique_ptr<RepackedWeights> repacked;
  if (layout == WeightLayout::kQ8_0x16) {
    repacked = std::make_unique<RepackedWeights>(matrix, nullptr);
    matrix = repacked->matrix();
  }
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(m * kDim), y(m * n);
  for (float& v : x) v = dist(rng);
  AlignedScratch scratch(matmul_scratch_bytes(type, m, kDim));
  const MatmulArgs args{.w = matrix,
                        .x = x.data(),
                        .num_tokens = m,
                        .x_stride = kDim,
                        .y = y.data(),
                        .y_stride = n,
                        .scratch = scratch.data};
  ThreadPool* p = threads > 1 ? &pool(threads) : nullptr;
  for (auto _ : state) {
    matmul(kernels, args, p);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double iterations = static_cast<double>(state.iterations());
  if (m == 1) {
    state.counters["GB/s"] =
        benchmark::Counter(iterations * w.size() / 1e9, benchmark::Counter::kIsRate);
  } else {
    state.counters["GFLOP/s"] =
        benchmark::Counter(iterations * 2.0 * m * n * kDim / 1e9, benchmark::Counter::kIsRate);
  }
  state.SetLabel(std::string(isa_name(kernels.isa)));
}

const bool kRegistered = [] {
  const WeightType types[] = {WeightType::kF32,  WeightType::kF16,  WeightType::kBF16,
                              WeightType::kQ8_0, WeightType::kQ4_0, WeightType::kQ4_K};
  struct Variant {
    WeightType type;
    WeightLayout layout;
    std::string name;
  };
  std::vector<Variant> variants;
  for (WeightType type : types) {
    variants.push_back({type, WeightLayout::kRows, std::string(weight_type_info(type).name)});
  }
  if (active_kernels().matmul_q8_0x16.run != nullptr) {
    variants.push_back({WeightType::kQ8_0, WeightLayout::kQ8_0x16, "Q8_0x16"});
  }
  for (int64_t m : {1, 4, 16, 64, 128}) {
    for (int64_t n : {2048, 32000}) {
      for (const Variant& v : variants) {
        for (int threads : {1, 2}) {
          const std::string name = std::string(m == 1 ? "matvec" : "matmul") + "/" + v.name +
                                   "/M:" + std::to_string(m) + "/N:" + std::to_string(n) +
                                   "/K:768/threads:" + std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), bench_matmul, v.type, v.layout, m, n, threads)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace ondol::kernels

BENCHMARK_MAIN();
