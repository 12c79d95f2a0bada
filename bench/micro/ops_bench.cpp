// Element-wise ops at the 110M Llama's sizes: per layer and token they run on dim (768) and FFN
// (2048) vectors, and softmax on one attention row per head (context length).
#include <benchmark/benchmark.h>

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

}  // namespace
}  // namespace ondol::kernels
