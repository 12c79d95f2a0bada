#include "engine/kernels/kernel_table.h"

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "engine/kernels/isa_registry.h"

namespace ondol::kernels {

namespace {

KernelTable build_scalar() {
  KernelTable table;
  table.isa = Isa::kScalar;
  register_scalar_matmul(table);
  register_scalar_ops(table);
  return table;
}

// Each level starts from the one below, so a kernel a level does not specialise falls back to the
// best lower version (today: BF16 matmul on AVX-512 CPUs without avx512bf16 uses AVX2's).
KernelTable build_avx2() {
  KernelTable table = build_scalar();
  table.isa = Isa::kAvx2;
  register_avx2_matmul_float(table);
  register_avx2_matmul_quant(table);
  register_avx2_ops(table);
  return table;
}

KernelTable build_avx512() {
  KernelTable table = build_avx2();
  table.isa = Isa::kAvx512;
  register_avx512_matmul_float(table);
  register_avx512_matmul_quant(table);
  register_avx512_matmul_q8_0x16(table);
  register_avx512_ops(table);
  if (cpu_features().avx512bf16) register_avx512_matmul_bf16(table);
  return table;
}

struct Tables {
  KernelTable scalar = build_scalar();
  std::optional<KernelTable> avx2 =
      is_isa_supported(Isa::kAvx2) ? std::optional(build_avx2()) : std::nullopt;
  std::optional<KernelTable> avx512 =
      is_isa_supported(Isa::kAvx512) ? std::optional(build_avx512()) : std::nullopt;
};

const Tables& tables() {
  static const Tables instance;
  return instance;
}

const KernelTable& choose_active() {
  const char* env = std::getenv(kIsaEnvVar);
  if (env != nullptr && !parse_isa(env)) {
    std::fprintf(stderr, "ondol: ignoring %s=%s (expected scalar, avx2 or avx512)\n", kIsaEnvVar,
                 env);
  }
  return *kernels_for(select_isa(env));
}

}  // namespace

const KernelTable* kernels_for(Isa isa) {
  const Tables& t = tables();
  switch (isa) {
    case Isa::kScalar:
      return &t.scalar;
    case Isa::kAvx2:
      return t.avx2 ? &*t.avx2 : nullptr;
    case Isa::kAvx512:
      return t.avx512 ? &*t.avx512 : nullptr;
  }
  return nullptr;
}

const KernelTable& active_kernels() {
  static const KernelTable& table = choose_active();
  return table;
}

const MatmulKernel& matmul_kernel(const KernelTable& table, WeightType type) {
  return table.matmul[weight_type_index(type)];
}

}  // namespace ondol::kernels
