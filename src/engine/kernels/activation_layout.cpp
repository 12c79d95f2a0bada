#include "engine/kernels/activation_layout.h"

#include <cassert>

namespace ondol::kernels {

namespace {

int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace

int64_t activation_row_bytes(ActivationType type, int64_t k) {
  switch (type) {
    case ActivationType::kF32:
      return 0;
    case ActivationType::kBF16:
      return round_up(round_up(k, kBf16PadElems) * 2, kActivationRowAlign);
    case ActivationType::kQ8x32:
      assert(k % kQ8x32BlockElems == 0);
      return round_up(k, kQ8x32GroupElems) / kQ8x32GroupElems * kQ8x32GroupBytes;
    case ActivationType::kQ8x256:
      assert(k % kQ8x256BlockElems == 0);
      return k / kQ8x256BlockElems * kQ8x256BlockBytes;
  }
  return 0;
}

}  // namespace ondol::kernels
