#include "engine/kernels/weight_type.h"

#include <cassert>

#include "engine/kernels/block_formats.h"

namespace ondol::kernels {

namespace {

// Order matches weight_type_index.
constexpr WeightTypeInfo kInfos[kNumWeightTypes] = {
    {"F32", 1, 4},
    {"F16", 1, 2},
    {"BF16", 1, 2},
    {"Q8_0", kQ8_0BlockElems, sizeof(BlockQ8_0)},
    {"Q4_0", kQ4_0BlockElems, sizeof(BlockQ4_0)},
    {"Q4_K", kQ4_KBlockElems, sizeof(BlockQ4_K)},
};

}  // namespace

int weight_type_index(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return 0;
    case WeightType::kF16:
      return 1;
    case WeightType::kBF16:
      return 2;
    case WeightType::kQ8_0:
      return 3;
    case WeightType::kQ4_0:
      return 4;
    case WeightType::kQ4_K:
      return 5;
  }
  assert(false && "unknown WeightType");
  return 0;
}

const WeightTypeInfo& weight_type_info(WeightType type) {
  return kInfos[weight_type_index(type)];
}

std::optional<WeightType> weight_type_from_ggml(uint32_t ggml_type) {
  switch (static_cast<WeightType>(ggml_type)) {
    case WeightType::kF32:
    case WeightType::kF16:
    case WeightType::kBF16:
    case WeightType::kQ8_0:
    case WeightType::kQ4_0:
    case WeightType::kQ4_K:
      return static_cast<WeightType>(ggml_type);
  }
  return std::nullopt;
}

bool is_valid_row_length(WeightType type, int64_t k) {
  return k > 0 && k % weight_type_info(type).block_elems == 0;
}

int64_t row_bytes(WeightType type, int64_t k) {
  const WeightTypeInfo& info = weight_type_info(type);
  assert(is_valid_row_length(type, k));
  return k / info.block_elems * info.block_bytes;
}

}  // namespace ondol::kernels
