#include "engine/kernels/rope.h"

#include <cassert>
#include <cmath>

namespace ondol::kernels {

bool is_valid(const RopeParams& p) {
  const int rotary_dim = p.rotary_dim == 0 ? p.head_dim : p.rotary_dim;
  return p.head_dim > 0 && rotary_dim > 0 && rotary_dim % 2 == 0 && rotary_dim <= p.head_dim &&
         rotary_dim <= kMaxRotaryDim && p.freq_base > 0 && p.freq_scale > 0;
}

Rope::Rope(const RopeParams& params) : params_(params) {
  assert(is_valid(params));
  if (params_.rotary_dim == 0) params_.rotary_dim = params_.head_dim;
  const int pairs = params_.rotary_dim / 2;
  inverse_frequency_.resize(pairs);
  for (int i = 0; i < pairs; ++i) {
    inverse_frequency_[i] =
        params_.freq_scale * std::pow(static_cast<double>(params_.freq_base),
                                      -2.0 * i / static_cast<double>(params_.rotary_dim));
  }
}

void Rope::angles(int64_t position, float* cos, float* sin) const {
  for (size_t i = 0; i < inverse_frequency_.size(); ++i) {
    const double theta = static_cast<double>(position) * inverse_frequency_[i];
    cos[i] = static_cast<float>(std::cos(theta));
    sin[i] = static_cast<float>(std::sin(theta));
  }
}

void Rope::rotate(float* x, int num_heads, const float* cos, const float* sin) const {
  const int pairs = params_.rotary_dim / 2;
  // Pair i is (x[first(i)], x[first(i) + stride]).
  const bool neox = params_.style == RopeStyle::kNeox;
  const int stride = neox ? pairs : 1;
  for (int h = 0; h < num_heads; ++h) {
    float* head = x + static_cast<int64_t>(h) * params_.head_dim;
    for (int i = 0; i < pairs; ++i) {
      float* a = head + (neox ? i : 2 * i);
      float* b = a + stride;
      const float x0 = *a, x1 = *b;
      *a = x0 * cos[i] - x1 * sin[i];
      *b = x0 * sin[i] + x1 * cos[i];
    }
  }
}

void Rope::apply(float* x, int num_heads, int64_t position) const {
  float cos[kMaxRotaryDim / 2], sin[kMaxRotaryDim / 2];
  angles(position, cos, sin);
  rotate(x, num_heads, cos, sin);
}

void Rope::apply(float* q, int num_q_heads, float* k, int num_k_heads, int64_t position) const {
  float cos[kMaxRotaryDim / 2], sin[kMaxRotaryDim / 2];
  angles(position, cos, sin);
  rotate(q, num_q_heads, cos, sin);
  rotate(k, num_k_heads, cos, sin);
}

}  // namespace ondol::kernels
