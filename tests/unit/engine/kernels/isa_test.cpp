// ISA detection and dispatch: every level this CPU has gets a complete table, every level it
// lacks is reported unavailable (never silently skipped), and ONDOL_ISA caps the choice.
#include "engine/kernels/isa.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "engine/kernels/kernel_table.h"
#include "kernel_test_support.h"

namespace ondol::kernels {
namespace {

// What the CPU has, asked independently of isa.cpp.
bool cpu_has(Isa isa) {
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return avx2;
    case Isa::kAvx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

class IsaLevelTest : public ::testing::TestWithParam<Isa> {};

TEST_P(IsaLevelTest, TableExistsExactlyWhenTheCpuHasTheLevel) {
  const Isa isa = GetParam();
  const KernelTable* table = kernels_for(isa);
  EXPECT_EQ(is_isa_supported(isa), cpu_has(isa));
  if (!cpu_has(isa)) {
    EXPECT_EQ(table, nullptr) << "dispatcher offers " << isa_name(isa) << " on a CPU without it";
    EXPECT_NE(select_isa(isa_name(isa).data()), isa);
    return;
  }
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->isa, isa);
  for (int i = 0; i < kNumWeightTypes; ++i) {
    EXPECT_NE(table->matmul[i].run, nullptr) << i;
    EXPECT_EQ(table->matmul[i].prepare == nullptr,
              table->matmul[i].activation == ActivationType::kF32)
        << i;
  }
  EXPECT_NE(table->rmsnorm, nullptr);
  EXPECT_NE(table->softmax, nullptr);
  EXPECT_NE(table->silu_mul, nullptr);
  EXPECT_NE(table->add, nullptr);
  EXPECT_NE(table->argmax, nullptr);
  EXPECT_NE(table->scale_max, nullptr);
  EXPECT_NE(table->matmul_nn, nullptr);
  EXPECT_NE(table->exp_sum, nullptr);
  EXPECT_NE(table->dot, nullptr);
  EXPECT_NE(table->axpy, nullptr);
  EXPECT_NE(table->dot_f16, nullptr);
  EXPECT_NE(table->axpy_f16, nullptr);
  EXPECT_NE(table->dot_rows_f16, nullptr);
  EXPECT_NE(table->axpy_rows_f16, nullptr);
  EXPECT_NE(table->quantize_row_i8, nullptr);
  EXPECT_NE(table->dequantize_rows_i8, nullptr);
  EXPECT_NE(table->dot_rows_i8, nullptr);
  EXPECT_NE(table->axpy_rows_i8, nullptr);
  EXPECT_NE(table->fp16_to_fp32_row, nullptr);
  EXPECT_NE(table->fp32_to_fp16_row, nullptr);
  EXPECT_NE(table->bf16_to_fp32_row, nullptr);
  EXPECT_NE(table->fp32_to_bf16_row, nullptr);
  EXPECT_EQ(select_isa(isa_name(isa).data()), isa);
}

TEST_P(IsaLevelTest, LevelKernelsAreItsOwn) {
  // A level's table must not just be the scalar one under another name.
  const Isa isa = GetParam();
  const KernelTable* table = kernels_for(isa);
  if (isa == Isa::kScalar || table == nullptr) {
    EXPECT_EQ(table == nullptr, !cpu_has(isa));
    return;
  }
  const KernelTable& scalar = *kernels_for(Isa::kScalar);
  for (int i = 0; i < kNumWeightTypes; ++i)
    EXPECT_NE(table->matmul[i].run, scalar.matmul[i].run) << i;
  EXPECT_NE(table->rmsnorm, scalar.rmsnorm);
  EXPECT_NE(table->softmax, scalar.softmax);
}

INSTANTIATE_TEST_SUITE_P(Levels, IsaLevelTest,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                         [](const auto& info) { return testing::isa_test_name(info.param); });

TEST(IsaTest, Bf16DotProductsOnlyWithAvx512Bf16) {
  const KernelTable* table = kernels_for(Isa::kAvx512);
  if (table == nullptr) {
    EXPECT_FALSE(cpu_has(Isa::kAvx512));
    return;
  }
  const bool has_bf16 = __builtin_cpu_supports("avx512bf16");
  EXPECT_EQ(cpu_features().avx512bf16, has_bf16);
  EXPECT_EQ(matmul_kernel(*table, WeightType::kBF16).activation,
            has_bf16 ? ActivationType::kBF16 : ActivationType::kF32);
}

TEST(IsaTest, NamesRoundTrip) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_FALSE(parse_isa("AVX2"));
  EXPECT_FALSE(parse_isa("native"));
  EXPECT_FALSE(parse_isa(""));
}

TEST(IsaTest, SelectionFromTheEnvironmentValue) {
  EXPECT_EQ(select_isa(nullptr), best_supported_isa());
  EXPECT_EQ(select_isa("scalar"), Isa::kScalar);
  EXPECT_EQ(select_isa("no-such-level"), best_supported_isa());
  // A request above what the CPU has gives the best it has, never an unsupported level.
  EXPECT_TRUE(is_isa_supported(select_isa("avx512")));
  EXPECT_TRUE(is_isa_supported(select_isa("avx2")));
  EXPECT_EQ(select_isa("avx2"), cpu_has(Isa::kAvx2) ? Isa::kAvx2 : Isa::kScalar);
}

TEST(IsaTest, ActiveTableFollowsTheEnvironment) {
  EXPECT_EQ(active_kernels().isa, select_isa(std::getenv(kIsaEnvVar)));
  EXPECT_EQ(&active_kernels(), kernels_for(active_kernels().isa));
}

TEST(IsaTest, BestLevelIsTheHighestSupported) {
  const Isa best = best_supported_isa();
  EXPECT_TRUE(cpu_has(best));
  if (best != Isa::kAvx512) {
    EXPECT_FALSE(cpu_has(Isa::kAvx512));
  }
  if (best == Isa::kScalar) {
    EXPECT_FALSE(cpu_has(Isa::kAvx2));
  }
}

}  // namespace
}  // namespace ondol::kernels
