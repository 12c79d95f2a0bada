// Rope: rotary position embedding. Pairs of a head's first rotary_dim values are rotated by
// position * freq_scale * freq_base^(-2i / rotary_dim) for pair i; the rest pass through.
// Scalar on purpose: per token it touches num_heads * head_dim values, nothing beside a matmul.
#pragma once

#include <cstdint>
#include <vector>

namespace ondol::kernels {

enum class RopeStyle : uint8_t {
  kNormal,  // pairs (2i, 2i+1): Llama as GGUF stores it (Q/K rows permuted by the converter)
  kNeox,    // pairs (i, i + rotary_dim/2): GPT-NeoX, Qwen2, Falcon, ...
};

inline constexpr int kMaxRotaryDim = 1024;

struct RopeParams {
  int head_dim = 0;
  int rotary_dim = 0;  // 0: head_dim. Even, <= head_dim, <= kMaxRotaryDim
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // linear scaling: 1 / the factor the context was stretched by
  RopeStyle style = RopeStyle::kNormal;
};

// Whether a Rope can be built from params (the model loader checks file values with this).
bool is_valid(const RopeParams& params);

class Rope {
 public:
  explicit Rope(const RopeParams& params);  // params must be is_valid

  // Rotates num_heads heads of head_dim floats, contiguous in x, to `position`.
  void apply(float* x, int num_heads, int64_t position) const;
  // Query and key heads of one token: the angles are computed once for both.
  void apply(float* q, int num_q_heads, float* k, int num_k_heads, int64_t position) const;

  const RopeParams& params() const { return params_; }

  // The two halves of apply(), for callers that rotate at one position many times (a forward
  // pass: every layer): cos and sin of rotary_dim / 2 angles, then the rotation with them.
  void angles(int64_t position, float* cos, float* sin) const;
  void rotate(float* x, int num_heads, const float* cos, const float* sin) const;

 private:
  RopeParams params_;
  std::vector<double> inverse_frequency_;  // rotary_dim / 2: freq_scale * base^(-2i / rotary_dim)
};

}  // namespace ondol::kernels
