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

// Decode attention with the kernels LlamaModel::attend_run_rows calls, one thread: for each
// (sequence, layer, head) item, scores over F16 key blocks, softmax, the weighted sum of F16 value
// blocks, with the blocks scattered over a pool (the model walks a range of heads per block). Arg
// 0: pool blocks (64: the pool sits in L2; 27648: one step of 16 sequences x 12 layers x 12 heads
// at 192 positions, 113 MB, streams from memory). Arg 1: prefetch the blocks of the item this many
// ahead into L2 (0: none; the model uses 1). Huge pages for the pool were tried (madvise): no gain
// once the next item is prefetched.
void BM_AttentionDecode(benchmark::State& state) {
  constexpr int64_t kHeadDim = 64, kBlockSize = 16, kPositions = 192, kItems = 16 * 12 * 12;
  constexpr int64_t kBlocksPerItem = kPositions / kBlockSize;
  constexpr int64_t kBlockValues = kBlockSize * kHeadDim;
  const int64_t pool_blocks = state.range(0);
  const int64_t distance = state.range(1);
  const KernelTable& k = active_kernels();
  std::vector<uint16_t> pool(static_cast<size_t>(2 * pool_blocks * kBlockValues));
  {
    const std::vector<float> values = random_vector(2 * kBlockValues, 6);
    for (int64_t b = 0; b < 2 * pool_blocks; b += 2)
      k.fp32_to_fp16_row(values.data(), pool.data() + b * kBlockValues, 2 * kBlockValues);
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
  auto block = [&](int64_t item, int64_t b, int which) {
    return pool.data() +
           (2 * ids[static_cast<size_t>(item * kBlocksPerItem + b)] + which) * kBlockValues;
  };
  for (auto _ : state) {
    for (int64_t item = 0; item < kItems; ++item) {
      if (distance > 0 && item + distance < kItems) {
        for (int64_t b = 0; b < kBlocksPerItem; ++b)
          for (int w = 0; w < 2; ++w)
            for (int64_t off = 0; off < kBlockValues; off += 32)
              __builtin_prefetch(block(item + distance, b, w) + off, 0, 2);
      }
      for (int64_t b = 0; b < kBlocksPerItem; ++b)
        k.dot_rows_f16(q.data(), block(item, b, 0), kBlockSize, kHeadDim, 0.125f,
                       scores.data() + b * kBlockSize);
      k.softmax(scores.data(), kPositions);
      std::fill(out.begin(), out.end(), 0.0f);
      for (int64_t b = 0; b < kBlocksPerItem; ++b)
        k.axpy_rows_f16(out.data(), scores.data() + b * kBlockSize, block(item, b, 1), kBlockSize,
                        kHeadDim);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * kItems * kBlocksPerItem * 2 * kBlockValues * 2);
}
BENCHMARK(BM_AttentionDecode)
    ->Args({64, 0})
    ->Args({27648, 0})
    ->Args({27648, 1})
    ->Args({27648, 2})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ondol::kernels
