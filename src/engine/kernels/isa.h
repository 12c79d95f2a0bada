// Isa: the instruction-set levels the kernels are built for, and what this CPU supports. The
// level is a closed enum: the ONDOL_ISA environment variable is parsed into it once, never
// compared as a string on a hot path.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ondol::kernels {

enum class Isa : uint8_t {
  kScalar,  // any x86-64; the reference
  kAvx2,    // AVX2 + FMA + F16C
  kAvx512,  // AVX-512 F/BW/VL + VNNI (BF16 dot products when avx512bf16 is present too)
};
inline constexpr int kNumIsas = 3;

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
};

// Detected once (cpuid, including whether the OS saves the wider registers).
const CpuFeatures& cpu_features();

bool is_isa_supported(Isa isa);
Isa best_supported_isa();

std::string_view isa_name(Isa isa);                   // "scalar", "avx2", "avx512"
std::optional<Isa> parse_isa(std::string_view name);  // inverse of isa_name

inline constexpr const char* kIsaEnvVar = "ONDOL_ISA";

// The level kernels run at: best_supported_isa(), lowered by ONDOL_ISA when set to a valid
// name. A request for more than the CPU has yields the best it has.
Isa select_isa(const char* env_value);

}  // namespace ondol::kernels
