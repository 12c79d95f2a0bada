// Element-wise ops at the 110M Llama's sizes: per layer and token they run on dim (768) and FFN
// (2048) vectors, and softmax on one attention row per head (context length).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "engine/kernels/kernel_table.h"

namespace ondol::kernels {
namespace {

std::vector<float> random_vector(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void BM_Rmsnorm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> x = random_vector(n, 1), w = random_vector(n, 2);
  std::vector<float> out(n);
  for (auto _ : state) {
    active_kernels().rmsnorm(out.data(), x.data(), w.data(), n, 1e-5f);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Rmsnorm)->Arg(768);

void BM_Softmax(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> x = random_vector(n, 3);
  std::vector<float> work(n);
  for (auto _ : state) {
    work = x;
    active_kernels().softmax(work.data(), n);
    benchmark::DoNotOptimize(work.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Softmax)->Arg(1024);

void BM_SiluMul(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> g = random_vector(n, 4), u = random_vector(n, 5);
  std::vector<float> out(n);
  for (auto _ : state) {
    active_kernels().silu_mul(out.data(), g.data(), u.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SiluMul)->Arg(2048);

// Prompt attention for a tile of 32 query rows of one head (arguments m, n, k): scores
// (32 x 128) = Q (32 x 64) · Kᵀ (64 x 128); out (32 x 64) = probabilities (32 x 128) · V
// (128 x 64); and the same at 4096 positions. FLOP/s counts 2 per multiply-add.
void BM_MatmulNn(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const std::vector<float> a = random_vector(m * k, 6), b = random_vector(k * n, 7);
  std::vector<float> c(m * n);
  for (auto _ : state) {
    active_kernels().matmul_nn(a.data(), k, b.data(), n, c.data(), n, m, n, k);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(static_cast<double>(2 * m * n * k),
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulNn)->Args({32, 128, 64})->Args({32, 64, 128})->Args({32, 64, 4096});

// The KV rows of BM_AttentionDecode: F16, or int8 with one scale per row (KvDtype::kI8).
struct F16Kv {
  using Value = uint16_t;
  static void fill(const KernelTable& k, const float* in, Value* rows, float*, int64_t num_rows,
                   int64_t n) {
    k.fp32_to_fp16_row(in, rows, num_rows * n);
  }
  static void dot(const KernelTable& k, const float* q, const Value* rows, const float*,
                  int64_t num_rows, int64_t n, float scale, float* out) {
    k.dot_rows_f16(q, rows, num_rows, n, scale, out);
  }
  static void axpy(const KernelTable& k, float* y, const float* a, const Value* rows, const float*,
                   int64_t num_rows, int64_t n) {
    k.axpy_rows_f16(y, a, rows, num_rows, n);
  }
};
struct I8Kv {
  using Value = int8_t;
  static void fill(const KernelTable& k, const float* in, Value* rows, float* scales,
                   int64_t num_rows, int64_t n) {
    for (int64_t r = 0; r < num_rows; ++r)
      k.quantize_row_i8(in + r * n, rows + r * n, &scales[r], n);
  }
  static void dot(const KernelTable& k, const float* q, const Value* rows, const float* scales,
                  int64_t num_rows, int64_t n, float scale, float* out) {
    k.dot_rows_i8(q, rows, scales, num_rows, n, scale, out);
  }
  static void axpy(const KernelTable& k, float* y, const float* a, const Value* rows,
                   const float* scales, int64_t num_rows, int64_t n) {
    k.axpy_rows_i8(y, a, rows, scales, num_rows, n);
  }
};

// Decode attention with the kernels LlamaModel::attend_run_rows calls, one thread: for each
// (sequence, layer, head) item, scores over key blocks, softmax, the weighted sum of value
// blocks, with the blocks scattered over a pool (the model walks a range of heads per block). Arg
// 0: pool blocks (64: the pool sits in L2; 27648: one step of 16 sequences x 12 layers x 12 heads
// at 192 positions, 113 MB in F16, streams from memory). Arg 1: prefetch the blocks of the item
// this many ahead into L2 (0: none; the model uses 1). Huge pages for the pool were tried
// (madvise): no gain once the next item is prefetched. Kv: F16Kv or I8Kv rows (the int8 scales,
// 4 bytes a row, are not prefetched).
template <class Kv>
void BM_AttentionDecode(benchmark::State& state) {
  using Value = typename Kv::Value;
  constexpr int64_t kHeadDim = 64, kBlockSize = 16, kPositions = 192, kItems = 16 * 12 * 12;
  constexpr int64_t kBlocksPerItem = kPositions / kBlockSize;
  constexpr int64_t kBlockValues = kBlockSize * kHeadDim;
  const int64_t pool_blocks = state.range(0);
  const int64_t distance = state.range(1);
  const KernelTable& k = active_kernels();
  std::vector<Value> pool(static_cast<size_t>(2 * pool_blocks * kBlockValues));
  std::vector<float> scales(static_cast<size_t>(2 * pool_blocks * kBlockSize));
  {
    const std::vector<float> values = random_vector(2 * kBlockValues, 6);
    for (int64_t b = 0; b < 2 * pool_blocks; b += 2)
      Kv::fill(k, values.data(), pool.data() + b * kBlockValues, scales.data() + b * kBlockSize,
               2 * kBlockSize, kHeadDim);
  }
  // Block ids of each item: K block i at 2 * id, V at 2 * id + 1.
  std::vector<int64_t> ids(static_cast<size_t>(kItems * kBlocksPerItem));
  std::mt19937 rng(7);
  std::vector<int64_t> perm(static_cast<size_t>(pool_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = perm[i % perm.size()];
  const std::vector<float> q = random_vector(kHeadDim, 8);
  std::vector<float> scores(kPositions), out(kHeadDim);
  auto block_id = [&](int64_t item, int64_t b, int which) {
    return 2 * ids[static_cast<size_t>(item * kBlocksPerItem + b)] + which;
  };
  auto block = [&](int64_t item, int64_t b, int which) {
    return pool.data() + block_id(item, b, which) * kBlockValues;
  };
  auto block_scales = [&](int64_t item, int64_t b, int which) {
    return scales.data() + block_id(item, b, which) * kBlockSize;
  };
  constexpr int64_t kCacheLine = 64;
  for (auto _ : state) {
    for (int64_t item = 0; item < kItems; ++item) {
      if (distance > 0 && item + distance < kItems) {
        for (int64_t b = 0; b < kBlocksPerItem; ++b)
          for (int w = 0; w < 2; ++w)
            for (int64_t off = 0; off < kBlockValues;
                 off += kCacheLine / static_cast<int64_t>(sizeof(Value)))
              __builtin_prefetch(block(item + distance, b, w) + off, 0, 2);
      }
      for (int64_t b = 0; b < kBlocksPerItem; ++b)
        Kv::dot(k, q.data(), block(item, b, 0), block_scales(item, b, 0), kBlockSize, kHeadDim,
                0.125f, scores.data() + b * kBlockSize);
      k.softmax(scores.data(), kPositions);
      std::fill(out.begin(), out.end(), 0.0f);
      for (int64_t b = 0; b < kBlocksPerItem; ++b)
        Kv::axpy(k, out.data(), scores.data() + b * kBlockSize, block(item, b, 1),
                 block_scales(item, b, 1), kBlockSize, kHeadDim);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * kItems * kBlocksPerItem * 2 * kBlockValues *
                          static_cast<int64_t>(sizeof(Value)));
}
BENCHMARK(BM_AttentionDecode<F16Kv>)
    ->Args({64, 0})
    ->Args({27648, 0})
    ->Args({27648, 1})
    ->Args({27648, 2})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AttentionDecode<I8Kv>)
    ->Args({64, 0})
    ->Args({27648, 0})
    ->Args({27648, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ondol::kernels
