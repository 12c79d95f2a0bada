#include "engine/kernels/quantize.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "engine/kernels/half.h"

namespace ondol::kernels {

namespace {

constexpr int kQ8Max = 127;
constexpr int kQ4Max = 15;
constexpr int kQ4_KScaleMax = 63;  // 6-bit scales and mins
// Candidate inverse scales for a sub-block: (kQ4Max + kScaleSearchFirst + i * kScaleSearchStep)
// / (max - min) for i in [0, kScaleSearchSteps]; each is refined by least squares and the best fit
// kept. The spread covers grids slightly wider and narrower than the plain min..max one.
constexpr float kScaleSearchFirst = -1.0f;
constexpr float kScaleSearchStep = 0.1f;
constexpr int kScaleSearchSteps = 20;

int round_to_int(float v) {
  return static_cast<int>(std::nearbyint(v));
}

// Fit x[i] ~ scale * q[i] - min with q in [0, 15] and min >= 0 (the stored offset is subtracted),
// minimising the squared error. Writes the chosen q; returns {scale, min}.
struct ScaleMin {
  float scale;
  float min;
};

ScaleMin fit_sub_block(const float* x, int n, uint8_t* q) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);  // the offset can only pull values down
  if (hi <= lo) {
    std::memset(q, 0, n);
    return {0.0f, -lo};
  }
  uint8_t trial[kQ4_KSubBlockElems];
  float best_error = INFINITY;
  ScaleMin best{(hi - lo) / kQ4Max, -lo};
  for (int step = 0; step <= kScaleSearchSteps; ++step) {
    const float inverse = (kQ4Max + kScaleSearchFirst + kScaleSearchStep * step) / (hi - lo);
    double sum_l = 0, sum_l2 = 0, sum_x = 0, sum_lx = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(round_to_int(inverse * (x[i] - lo)), 0, kQ4Max);
      trial[i] = static_cast<uint8_t>(l);
      sum_l += l;
      sum_l2 += static_cast<double>(l) * l;
      sum_x += x[i];
      sum_lx += static_cast<double>(l) * x[i];
    }
    // Least squares for x ~ a * l + b, then b clamped to <= 0.
    const double det = n * sum_l2 - sum_l * sum_l;
    if (det <= 0) continue;
    double a = (n * sum_lx - sum_l * sum_x) / det;
    double b = (sum_l2 * sum_x - sum_l * sum_lx) / det;
    if (b > 0) {
      b = 0;
      a = sum_lx / sum_l2;
    }
    double error = 0;
    for (int i = 0; i < n; ++i) {
      const double diff = a * trial[i] + b - x[i];
      error += diff * diff;
    }
    if (error < best_error && a >= 0) {
      best_error = static_cast<float>(error);
      best = {static_cast<float>(a), static_cast<float>(-b)};
      std::memcpy(q, trial, n);
    }
  }
  if (best_error == INFINITY) {  // no candidate fitted (degenerate data): the plain min..max grid
    for (int i = 0; i < n; ++i) {
      q[i] = static_cast<uint8_t>(std::clamp(round_to_int((x[i] - lo) / best.scale), 0, kQ4Max));
    }
  }
  return best;
}

void pack_q4_k_scales(const uint8_t* scale, const uint8_t* min, uint8_t* packed) {
  std::memset(packed, 0, kQ4_KScaleBytes);
  for (int j = 0; j < kQ4_KSubBlocks; ++j) {
    if (j < 4) {
      packed[j] = scale[j];
      packed[j + 4] = min[j];
    } else {
      packed[j + 4] = static_cast<uint8_t>((scale[j] & 0xF) | ((min[j] & 0xF) << 4));
      packed[j - 4] |= static_cast<uint8_t>((scale[j] >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((min[j] >> 4) << 6);
    }
  }
}

}  // namespace

void unpack_q4_k_scale_min(const uint8_t* scales, int j, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* out, int64_t k) {
  assert(k % kQ8_0BlockElems == 0);
  for (int64_t b = 0; b < k / kQ8_0BlockElems; ++b, x += kQ8_0BlockElems) {
    float amax = 0;
    for (int i = 0; i < kQ8_0BlockElems; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / kQ8Max;
    const float inverse = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = fp32_to_fp16(d);
    for (int i = 0; i < kQ8_0BlockElems; ++i) {
      out[b].qs[i] = static_cast<int8_t>(round_to_int(x[i] * inverse));
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* in, float* y, int64_t k) {
  assert(k % kQ8_0BlockElems == 0);
  for (int64_t b = 0; b < k / kQ8_0BlockElems; ++b, y += kQ8_0BlockElems) {
    const float d = fp16_to_fp32(in[b].d);
    for (int i = 0; i < kQ8_0BlockElems; ++i) y[i] = in[b].qs[i] * d;
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* out, int64_t k) {
  assert(k % kQ4_0BlockElems == 0);
  constexpr int kHalf = kQ4_0BlockElems / 2;
  for (int64_t b = 0; b < k / kQ4_0BlockElems; ++b, x += kQ4_0BlockElems) {
    float amax = 0, signed_max = 0;
    for (int i = 0; i < kQ4_0BlockElems; ++i) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        signed_max = x[i];
      }
    }
    const float d = signed_max / -kQ4_0Offset;
    const float inverse = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = fp32_to_fp16(d);
    for (int i = 0; i < kHalf; ++i) {
      const int lo = std::clamp(round_to_int(x[i] * inverse) + kQ4_0Offset, 0, kQ4Max);
      const int hi = std::clamp(round_to_int(x[i + kHalf] * inverse) + kQ4_0Offset, 0, kQ4Max);
      out[b].qs[i] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void dequantize_row_q4_0(const BlockQ4_0* in, float* y, int64_t k) {
  assert(k % kQ4_0BlockElems == 0);
  constexpr int kHalf = kQ4_0BlockElems / 2;
  for (int64_t b = 0; b < k / kQ4_0BlockElems; ++b, y += kQ4_0BlockElems) {
    const float d = fp16_to_fp32(in[b].d);
    for (int i = 0; i < kHalf; ++i) {
      y[i] = ((in[b].qs[i] & 0xF) - kQ4_0Offset) * d;
      y[i + kHalf] = ((in[b].qs[i] >> 4) - kQ4_0Offset) * d;
    }
  }
}

void quantize_row_q4_k(const float* x, BlockQ4_K* out, int64_t k) {
  assert(k % kQ4_KBlockElems == 0);
  for (int64_t b = 0; b < k / kQ4_KBlockElems; ++b, x += kQ4_KBlockElems) {
    uint8_t q[kQ4_KBlockElems];
    float scale[kQ4_KSubBlocks], min[kQ4_KSubBlocks];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kQ4_KSubBlocks; ++j) {
      const ScaleMin fit =
          fit_sub_block(x + j * kQ4_KSubBlockElems, kQ4_KSubBlockElems, q + j * kQ4_KSubBlockElems);
      scale[j] = fit.scale;
      min[j] = fit.min;
      max_scale = std::max(max_scale, fit.scale);
      max_min = std::max(max_min, fit.min);
    }
    // 6-bit scales and mins relative to the super-block's d and dmin.
    const float inverse_scale = max_scale > 0 ? kQ4_KScaleMax / max_scale : 0.0f;
    const float inverse_min = max_min > 0 ? kQ4_KScaleMax / max_min : 0.0f;
    uint8_t scale6[kQ4_KSubBlocks], min6[kQ4_KSubBlocks];
    for (int j = 0; j < kQ4_KSubBlocks; ++j) {
      scale6[j] =
          static_cast<uint8_t>(std::min(round_to_int(inverse_scale * scale[j]), kQ4_KScaleMax));
      min6[j] = static_cast<uint8_t>(std::min(round_to_int(inverse_min * min[j]), kQ4_KScaleMax));
    }
    BlockQ4_K& block = out[b];
    block.d = fp32_to_fp16(max_scale / kQ4_KScaleMax);
    block.dmin = fp32_to_fp16(max_min / kQ4_KScaleMax);
    pack_q4_k_scales(scale6, min6, block.scales);
    // Requantize against the scales as stored (rounded twice: 6 bits, then fp16).
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int j = 0; j < kQ4_KSubBlocks; ++j) {
      const float step = d * scale6[j];
      const float offset = dmin * min6[j];
      if (step == 0) {
        std::memset(q + j * kQ4_KSubBlockElems, 0, kQ4_KSubBlockElems);
        continue;
      }
      for (int i = 0; i < kQ4_KSubBlockElems; ++i) {
        const int l = j * kQ4_KSubBlockElems + i;
        q[l] = static_cast<uint8_t>(std::clamp(round_to_int((x[l] + offset) / step), 0, kQ4Max));
      }
    }
    // Chunk c of 32 bytes: sub-block 2c in the low nibbles, 2c + 1 in the high ones.
    for (int c = 0; c < kQ4_KSubBlocks / 2; ++c) {
      for (int i = 0; i < kQ4_KSubBlockElems; ++i) {
        block.qs[c * kQ4_KSubBlockElems + i] = static_cast<uint8_t>(
            q[2 * c * kQ4_KSubBlockElems + i] | (q[(2 * c + 1) * kQ4_KSubBlockElems + i] << 4));
      }
    }
  }
}

void dequantize_row_q4_k(const BlockQ4_K* in, float* y, int64_t k) {
  assert(k % kQ4_KBlockElems == 0);
  for (int64_t b = 0; b < k / kQ4_KBlockElems; ++b) {
    const BlockQ4_K& block = in[b];
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int j = 0; j < kQ4_KSubBlocks; ++j) {
      uint8_t scale, min;
      unpack_q4_k_scale_min(block.scales, j, &scale, &min);
      const uint8_t* qs = block.qs + (j / 2) * kQ4_KSubBlockElems;
      const int shift = (j % 2) * 4;
      for (int i = 0; i < kQ4_KSubBlockElems; ++i) {
        *y++ = d * scale * ((qs[i] >> shift) & 0xF) - dmin * min;
      }
    }
  }
}

void quantize_row(WeightType type, const float* x, void* out, int64_t k) {
  assert(is_valid_row_length(type, k));
  switch (type) {
    case WeightType::kF32:
      std::memcpy(out, x, k * sizeof(float));
      return;
    case WeightType::kF16: {
      auto* h = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < k; ++i) h[i] = fp32_to_fp16(x[i]);
      return;
    }
    case WeightType::kBF16: {
      auto* h = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < k; ++i) h[i] = fp32_to_bf16(x[i]);
      return;
    }
    case WeightType::kQ8_0:
      quantize_row_q8_0(x, static_cast<BlockQ8_0*>(out), k);
      return;
    case WeightType::kQ4_0:
      quantize_row_q4_0(x, static_cast<BlockQ4_0*>(out), k);
      return;
    case WeightType::kQ4_K:
      quantize_row_q4_k(x, static_cast<BlockQ4_K*>(out), k);
      return;
  }
}

void dequantize_row(WeightType type, const void* in, float* y, int64_t k) {
  assert(is_valid_row_length(type, k));
  switch (type) {
    case WeightType::kF32:
      std::memcpy(y, in, k * sizeof(float));
      return;
    case WeightType::kF16: {
      const auto* h = static_cast<const uint16_t*>(in);
      for (int64_t i = 0; i < k; ++i) y[i] = fp16_to_fp32(h[i]);
      return;
    }
    case WeightType::kBF16: {
      const auto* h = static_cast<const uint16_t*>(in);
      for (int64_t i = 0; i < k; ++i) y[i] = bf16_to_fp32(h[i]);
      return;
    }
    case WeightType::kQ8_0:
      dequantize_row_q8_0(static_cast<const BlockQ8_0*>(in), y, k);
      return;
    case WeightType::kQ4_0:
      dequantize_row_q4_0(static_cast<const BlockQ4_0*>(in), y, k);
      return;
    case WeightType::kQ4_K:
      dequantize_row_q4_k(static_cast<const BlockQ4_K*>(in), y, k);
      return;
  }
}

}  // namespace ondol::kernels
