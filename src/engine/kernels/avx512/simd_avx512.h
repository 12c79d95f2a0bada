// Small AVX-512 helpers shared by the avx512/ units. Static, so every unit keeps its own copy.
#pragma once

// GCC 12 warns about the self-initialisation inside its own _mm*_undefined_* intrinsics (GCC
// bug 105593, fixed in GCC 13); the location is the system header, so silence it only there.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

namespace ondol::kernels::avx512 {

inline constexpr int kFloatLanes = 16;

// All-ones in the low `count` lanes (count <= 32).
static inline __mmask32 low_mask32(int64_t count) {
  return count >= 32 ? 0xFFFFFFFFu : static_cast<__mmask32>((1u << count) - 1u);
}
static inline __mmask16 low_mask16(int64_t count) {
  return count >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << count) - 1u);
}

// e^x for x in float range: x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor polynomial to r^7
// (truncation below 1e-8 relative), times 2^n with scalef, which handles underflow to 0.
static inline __m512 exp_ps(__m512 x) {
  const __m512 kMin = _mm512_set1_ps(-104.0f);  // e^-104 underflows to 0
  const __m512 kMax = _mm512_set1_ps(88.72f);   // e^88.72 is near FLT_MAX
  x = _mm512_min_ps(_mm512_max_ps(x, kMin), kMax);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 split into a short high part (n * high is exact) and the remainder.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Float -> bf16 bits in the low 16 bits of each lane, rounded to nearest even like
// fp32_to_bf16 (integer arithmetic, so subnormals are kept, unlike vcvtneps2bf16).
static inline __m512i fp32_to_bf16_bits(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  const __m512i quiet_nan = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  return _mm512_mask_mov_epi32(rounded, nan, quiet_nan);
}

}  // namespace ondol::kernels::avx512
