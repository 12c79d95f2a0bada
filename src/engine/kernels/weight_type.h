// WeightType: the storage formats a weight row may have, numbered as ggml numbers them so that a
// GGUF tensor's type id converts with a cast (after weight_type_from_ggml has vetted it).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ondol::kernels {

enum class WeightType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 8,
  kQ4_K = 12,
  kBF16 = 30,
};

// Dense index for tables indexed by weight type (KernelTable::matmul).
inline constexpr int kNumWeightTypes = 6;
int weight_type_index(WeightType type);

struct WeightTypeInfo {
  std::string_view name;  // as GGUF tools print it: "F16", "Q4_K", ...
  int64_t block_elems;    // values per block; rows are whole blocks
  int64_t block_bytes;    // bytes per block
};

const WeightTypeInfo& weight_type_info(WeightType type);

// nullopt for ggml types the engine has no kernels for (Q5_K, IQ*, ...).
std::optional<WeightType> weight_type_from_ggml(uint32_t ggml_type);

// A row of k values must be whole blocks: k % block_elems == 0 and k > 0.
bool is_valid_row_length(WeightType type, int64_t k);

// Bytes of one row of k values; k must satisfy is_valid_row_length.
int64_t row_bytes(WeightType type, int64_t k);

}  // namespace ondol::kernels
